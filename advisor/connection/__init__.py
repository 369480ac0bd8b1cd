"""Connections to mail servers, signed in or only probed: the layer above oauth/.

* :mod:`advisor.connection.tls`: the verifying TLS context and the one STARTTLS switch;
* :mod:`advisor.connection.imap`: the IMAP factory (bounded imaplib, enforced STARTTLS,
  password and OAuth2 login);
* :mod:`advisor.connection.password_login`: credentials of any characters for IMAP, POP3, SMTP;
* :mod:`advisor.connection.probe`: low-level steps for discovery and checks (no login);
* :mod:`advisor.connection.account`: profile -> :class:`AccountAccess`, signed-in connections;
* :mod:`advisor.connection.signin`: the OAuth2 sign-in use case (browser or device, then a
  test login over IMAP).

Nothing is imported here, so importing one module does not pull in the others.
"""
