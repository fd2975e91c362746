"""The Argos-format configuration: reading YAML with positions, validating every section,
durations, maintenance windows, the diff between two task sets and the configuration in force."""
