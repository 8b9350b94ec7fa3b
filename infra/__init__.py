"""CDK constructs: DaemonGuard and its parts."""
