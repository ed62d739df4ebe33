"""Reads a Prometheus text exposition on stdin with prometheus_client's parser (the reference
Python client's own) and prints its families as JSON: name, type, HELP text and samples.
A line the parser cannot read fails here, with its error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append(
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value}
                for s in family.samples
            ],
        }
    )
json.dump(families, sys.stdout)
