"""One process per service; `services.cli` is the `tocsin` command that registers them all."""
