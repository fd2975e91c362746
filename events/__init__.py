"""The contract every Tocsin service shares: event types, subjects, streams, codec."""
