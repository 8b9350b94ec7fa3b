#!/usr/bin/env python3
"""The daemon-guard CDK app: one stack built from the `daemon-guard` context in cdk.json."""

from __future__ import annotations

import aws_cdk as cdk

from infra.app import build_app

app = cdk.App()
build_app(app)
app.synth()
