"""The wizard's last step: the new account on each of the user's devices, then the switch.

:func:`device_step` is handed how to ask and how to speak, and only decides what to ask
and what to write (with :mod:`advisor.devices`); :class:`DevicesStep` is the wizard's
step around it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape

from advisor.cli.wizard.questions import Option, Prompt, QuestionKind
from advisor.cli.wizard.state import WizardState
from advisor.devices import DeviceAccount, device_account
from advisor.devices.files import old_program_habits, write_device_files
from advisor.devices.guide import TITLES, DeviceKind, settings_text, steps_for, switch_steps
from advisor.devices.old_pop3 import GMAIL_POP_NOTE
from advisor.errors import MailadvisorError
from advisor.plugins.types import Protocol

DONE = "done"


def device_step(
    ask: Callable[[Prompt], Any],
    say: Callable[[str], None],
    account: DeviceAccount,
    folder: Path,
    *,
    devices: int | None,
    source: Path | None,
    profile_path: str,
) -> dict[DeviceKind, Path]:
    """Ask which devices to set up, write a file for each that takes one, say the steps,
    warn about the old POP3 program, and end with the order of steps that loses nothing."""
    written: dict[DeviceKind, Path] = {}
    done: set[DeviceKind] = set()
    # The user counted this computer among the devices; the others are the ones to set up.
    others = max(0, (devices or 1) - 1)
    while True:
        remaining = [k for k in DeviceKind if k not in done]
        default = remaining[0].value if remaining and len(done) < others else DONE
        answer = ask(
            Prompt(
                "device",
                QuestionKind.SELECT,
                "Set up another device with this account?"
                if done
                else "Which of your devices shall I set up with this account?",
                "I write a file or a QR code the device takes in directly; no password in it.",
                default,
                (
                    *(Option(TITLES[k], k.value) for k in remaining),
                    Option("No more devices", DONE),
                ),
            )
        )
        if answer == DONE:
            break
        kind = DeviceKind(answer)
        done.add(kind)
        written.update(write_device_files(account, folder, [kind]))
        where = str(written[kind]) if kind in written else None
        steps = steps_for(kind, account, where)
        say(f"[bold]{escape(steps.title)}[/]")
        for n, step in enumerate(steps.steps, 1):
            say(f"  {n}. {escape(step)}")
        if kind in (DeviceKind.OTHER, DeviceKind.THUNDERBIRD, DeviceKind.ANDROID):
            for line in settings_text(account):
                say(f"     {escape(line)}")
        if remaining == [kind]:
            break
    warnings = [w for h in old_program_habits(source) if (w := h.warning()) is not None]
    if account.provider == "gmail":
        warnings.append(GMAIL_POP_NOTE)
    for w in warnings:
        say(f"[yellow]Careful:[/] {escape(w)}")
    say("[bold]Switching from POP3 without losing mail[/], in this order:")
    for n, step in enumerate(switch_steps(profile_path), 1):
        say(f"  {n}. {escape(step)}")
    return written


class DevicesStep(WizardState):
    """After the copying: the other devices the user counted, and the switch."""

    def _devices(self) -> None:
        """The new account on the user's other devices, and the switch that loses nothing."""
        self.heading("Your other devices")
        smtp = next(
            (
                f.endpoint
                for f in (self.detection.servers if self.detection else ())
                if f.endpoint.protocol is Protocol.SMTP
            ),
            None,
        )
        try:
            account = device_account(self.profile, self.plugins, smtp=smtp)
        except MailadvisorError as exc:
            self.say(f"I cannot write the settings for your devices: {escape(str(exc))}")
            return
        saved = self.result.profile_path
        folder = (saved.parent if saved else self.profile_dir) / f"{self.email}-devices"
        self.result.device_files = device_step(
            self.ask,
            self.say,
            account,
            folder,
            devices=self.asked.devices,
            source=self.profile.source.path,
            profile_path=str(saved) if saved else "FILE",
        )
