"""Pure domain logic: no I/O, no clock, no environment. Adapters call into it."""
