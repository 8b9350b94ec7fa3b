#!/usr/bin/env python3
"""The daemon-guard CDK app: one stack built from the `daemon-guard` context in cdk.json."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The jsii runtime prints an 11-line end-of-life banner for Node 20 on every synth; the CDK CLI supports
# Node 20 still, so say it once here rather than in every `npx cdk ...` output (set them to see it again).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # after the environment above: the jsii runtime reads it on import

# The Lambda package lives in lambdas/ (installed editable by `make install`); work without it too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lambdas"))

from infra.app import build_app

app = cdk.App()
build_app(app)
app.synth()
