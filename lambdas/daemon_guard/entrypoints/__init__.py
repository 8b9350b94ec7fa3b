"""The four Lambda entry points: each builds its handler from a `Runtime` (`daemon_guard.bootstrap`)."""
