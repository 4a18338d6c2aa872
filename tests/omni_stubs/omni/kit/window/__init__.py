"""Stand-in namespace (tests only)."""
