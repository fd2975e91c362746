"""Who may do what on the bus: identities, permissions, the NATS server configuration
generated from them, credentials files, TLS options and sealed request secrets.

See docs/security.md for the model and the choices behind it.
"""
