"""The wizard's steps, one class per step over :class:`~advisor.cli.wizard.state.WizardState`.

``local_mail`` (the mail on this computer), ``advice`` (the questions, the advice, the
choice, the storage limit), ``provider`` (the address, the provider, the settings for the
mail program), ``checking`` and ``sign_in`` (the connection test and the ways out of a
failure), ``copying`` (the migration: the wizard's one wiring of it), ``saving`` (the
profile and where the password lives), ``devices`` (the other devices and the switch).
"""
