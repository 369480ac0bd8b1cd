"""What the tests run against: private Dovecot, Cyrus and Courier servers, proxies that cut,
throttle, record or attack connections, fakes for what cannot run here (Gmail, an OAuth2
server, DNS and HTTPS), the real POP3 fetchers and mail programs' drivers, and the
generators that write stores as their programs do. The benchmarks in bench/ use them too.
"""
