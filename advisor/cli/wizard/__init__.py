"""The guided wizard (``mailadvisor`` without arguments), split by responsibility.

:mod:`.flow` is the order of the steps (:class:`~.flow.Wizard`, :func:`~.flow.run_wizard`);
:mod:`.state` what a run knows; :mod:`.steps` one module per step; :mod:`.texts` the
prose and labels; :mod:`.questions` the question layer over questionary. The wizard uses
the library the commands use: :func:`advisor.checks.run_checks` for the test,
:func:`advisor.migration.quota.measure_quota` for the storage limit, :mod:`advisor.secrets` for the
keyring and :func:`advisor.profile.save_profile` for the profile file.
"""
