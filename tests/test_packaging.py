"""The distributions a package index would get: one wheel and one sdist, nothing local in them.

A wheel whose metadata points at the build machine's checkout (``Requires-Dist: x @
file:///...``) is refused by every index and breaks once the checkout is gone; the
built-in plugins and the example profiles must travel inside the wheel itself.
"""

from __future__ import annotations

import email.parser
import json
import os
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = {"gmail", "outlook", "generic", "providers"}


def _build(source: Path, out: Path, *targets: str) -> None:
    args = [arg for t in targets for arg in ("-t", t)]
    done = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", *args, "-d", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    _build(ROOT, out)
    (wheel,) = out.glob("mailadvisor-*.whl")
    (sdist,) = out.glob("mailadvisor-*.tar.gz")
    return wheel, sdist


def _wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if ".dist-info/" not in n}


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}")]
        return zf.read(member).decode()


def test_wheel_metadata_has_no_direct_references(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    metadata = email.parser.Parser().parsestr(_dist_info(wheel, "METADATA"))
    requires = metadata.get_all("Requires-Dist") or []
    assert requires, "the wheel declares no dependencies at all"
    assert [r for r in requires if "@" in r or "file:" in r] == []
    # The built-in plugins are no longer separate distributions to depend on.
    assert not [r for r in requires if r.startswith("mailadvisor-")]


def test_wheel_carries_the_builtin_plugins_and_registers_them(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    files = _wheel_files(wheel)
    for name in PLUGINS:
        assert f"mailadvisor_{name}/__init__.py" in files
    assert "mailadvisor_providers/providers.toml" in files  # the data, not only the code
    # Installed under names of their own: a top-level "plugins" package would collide.
    assert not [f for f in files if f.startswith("plugins/")]
    entry_points = _dist_info(wheel, "entry_points.txt")
    group = entry_points.split("[mailadvisor]", 1)[1].split("[", 1)[0]
    registered = dict(
        (part.strip() for part in line.split("=", 1)) for line in group.splitlines() if "=" in line
    )
    assert registered == {name: f"mailadvisor_{name}" for name in PLUGINS}
    assert "mailadvisor = advisor.cli:main" in entry_points
    shipped = {f.rsplit("/", 1)[1] for f in files if f.startswith("advisor/example_profiles/")}
    assert shipped == {p.name for p in (ROOT / "profiles").glob("*.toml")}


def test_sdist_builds_the_same_wheel(dists: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, sdist = dists
    with tarfile.open(sdist) as tf:
        # Our own sdist; the "data" filter where this Python has it (3.11.4 and later).
        if hasattr(tarfile, "data_filter"):
            tf.extractall(tmp_path, filter="data")
        else:
            tf.extractall(tmp_path)
    (unpacked,) = tmp_path.iterdir()
    for name in PLUGINS:
        assert (unpacked / "plugins" / name / f"mailadvisor_{name}" / "__init__.py").is_file()
    out = tmp_path / "again"
    _build(unpacked, out, "wheel")
    (rebuilt,) = out.glob("*.whl")
    assert _wheel_files(rebuilt) == _wheel_files(wheel)


def _outer_site_dirs() -> list[str]:
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def test_installed_wheel_runs_without_the_source_tree(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    """Installed into a folder of its own and run from elsewhere, never from the checkout."""
    wheel, _ = dists
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    # -S: no site processing, so the checkout's editable install (a .pth file) is not
    # seen; the dependencies come from this environment's site directories, by path.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILADVISOR_")},
        "PYTHONPATH": os.pathsep.join([str(target), *_outer_site_dirs()]),
    }

    def run(*args: str) -> dict[str, object]:
        out = subprocess.run(
            [sys.executable, "-S", "-m", "advisor", *args, "--json"],
            cwd=work, env=env, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        result: dict[str, object] = json.loads(out.stdout)
        return result

    where = subprocess.run(
        [sys.executable, "-S", "-c", "import advisor, mailadvisor_gmail as g;"
         "print(advisor.__file__); print(g.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(target) for p in where), where
    plugins = run("plugins")["plugins"]
    assert isinstance(plugins, list)
    builtins = {p["name"]: p for p in plugins if p["builtin"]}
    assert set(builtins) == PLUGINS
    assert {p["distribution"] for p in builtins.values()} == {"mailadvisor"}
    examples = run("profile", "examples")["examples"]
    assert isinstance(examples, list) and len(examples) == 3
    for example in examples:
        assert Path(example["path"]).is_relative_to(target / "advisor" / "example_profiles")
