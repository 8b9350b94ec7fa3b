#!/usr/bin/env python3
"""The daemon-guard CDK app: one stack built from the `daemon-guard` context in cdk.json."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

# The Lambda package lives in lambdas/ (installed editable by `make install`); work without it too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from infra.app import build_app

app = cdk.App()
build_app(app)
app.synth()
