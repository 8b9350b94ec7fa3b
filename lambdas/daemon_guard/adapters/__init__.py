"""Thin boto3 ports: translate AWS API shapes to core views, never decide."""
