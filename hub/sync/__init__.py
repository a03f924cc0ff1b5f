"""The nightly job: pull, map, gate, store, route, outbox, push (see DESIGN.md)."""
