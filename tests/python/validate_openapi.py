"""Reads an OpenAPI document on stdin, validates it with openapi-spec-validator (a parse or
schema error exits non-zero) and prints its paths with their operations as JSON:
{"/path": ["get", ...], ...}."""
import json
import sys

import yaml
from openapi_spec_validator import validate

doc = yaml.safe_load(sys.stdin.read())
validate(doc)
json.dump(
    {p: sorted(k for k in ops if k != "parameters") for p, ops in doc["paths"].items()},
    sys.stdout,
)
