"""What every Tocsin process needs at run time: connections, logs, options, embedded servers."""

__version__ = "0.1.0"
