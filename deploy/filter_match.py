"""Lambda's event filtering, applied to DynamoDB stream records as the event source mapping of
deploy/messaging-stream.yaml would apply it, without AWS.

The filter-pattern syntax is matched by moto's implementation (moto.events.models.EventPattern,
the EventBridge pattern matcher that Lambda's filter criteria share), not by code of ours, so
that a test can compare it with the handler's own predicate (ddb_core::stream::invokes).
Run with the Python of moto's virtualenv (bin/local/install-moto):

    .local/moto/bin/python deploy/filter_match.py deploy/messaging-stream.yaml < records.json

reads a JSON array of records, each as Lambda delivers it (eventName, dynamodb.Keys, ...), and
prints a JSON array of booleans: whether the mapping would deliver each record to the function.
"""

import json
import sys

import yaml
from moto.events.models import EventPattern


class _TemplateLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short forms (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_TemplateLoader.add_multi_constructor("!", _any_tag)


def patterns(template_path):
    """The filter patterns of the template's one DynamoDB event source mapping, parsed by moto."""
    with open(template_path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=_TemplateLoader)
    mappings = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    if len(mappings) != 1:
        raise SystemExit(f"error: {template_path} has {len(mappings)} event source mappings, not one")
    filters = mappings[0]["Properties"]["FilterCriteria"]["Filters"]
    return [EventPattern.load(f["Pattern"]) for f in filters]


def delivered(compiled, record):
    """Lambda delivers a record that matches any of the mapping's filters."""
    return any(p.matches_event(record) for p in compiled)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: filter_match.py TEMPLATE < records.json")
    compiled = patterns(sys.argv[1])
    records = json.load(sys.stdin)
    json.dump([delivered(compiled, r) for r in records], sys.stdout)
    print()


if __name__ == "__main__":
    main()
