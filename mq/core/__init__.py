"""Pure queue semantics: no sockets, no SQL, no wall clock. Time comes from an injected clock."""
