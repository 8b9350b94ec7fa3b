"""Pure decisions: state in, actions out. No boto3, no os, no clock reads."""
