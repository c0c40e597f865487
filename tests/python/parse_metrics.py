"""Reads `/metrics` on stdin with prometheus_client's OpenMetrics parser (the format arrayd
serves, which Prometheus scrapes natively) and prints every sample as JSON:
[{"name", "labels", "value", "type"}, ...]. A parse error exits non-zero."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append(
            {"name": s.name, "labels": s.labels, "value": s.value, "type": family.type}
        )
json.dump(samples, sys.stdout)
