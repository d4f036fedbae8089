#!/usr/bin/env python3
"""Converts the RFC 7208 SPF conformance suite (rfc7208-tests.yml, openspf.org release
2014.04 with later additions, as shipped by Debian's python3-spf) into the JSON fixture
Tests/Fixtures/spf/rfc7208-tests.json read by the Swift test SPFSuiteTests.

Swift has no YAML parser here, so the YAML is converted once and the JSON is committed.
Run it again only when the suite changes:

    python3 scripts/spf-suite-to-json.py \
        /usr/share/doc/python3-spf/rfc7208-tests.yml.gz Tests/Fixtures/spf/rfc7208-tests.json

The JSON keeps the suite's shape, normalised so the Swift side needs no guessing:
  {"source": ..., "scenarios": [{"description", "zonedata": {name: [entry]}, "tests": [...]}]}
  - a test: {"name", "spec", "helo", "host", "mailfrom", "result": [allowed...],
    "explanation"?}; a single result becomes a one-element list, scalars become strings;
  - a zone entry: {"type": "TXT", "value": ...} where TXT/SPF values are lists of strings
    (a record's character-strings), MX is [preference, host], others a string;
    a bare TIMEOUT entry becomes {"type": "TIMEOUT"}.
Scenarios and tests keep the suite's order (YAML mappings are ordered in PyYAML >= 3.x
with safe_load into dicts on Python 3.7+).
"""
import gzip
import json
import sys

import yaml


def entry(item):
    if item == 'TIMEOUT':
        return {'type': 'TIMEOUT'}
    if not isinstance(item, dict) or len(item) != 1:
        raise SystemExit('unexpected zone entry: %r' % (item,))
    (rtype, value), = item.items()
    if rtype in ('TXT', 'SPF'):
        if isinstance(value, str):
            value = [value]
        value = [str(v) for v in value]
    elif rtype == 'MX':
        value = [int(value[0]), str(value[1])]
    elif isinstance(value, bool):
        value = 'TIMEOUT' if value else str(value)
    else:
        value = str(value)
    return {'type': rtype, 'value': value}


def main(source, target):
    opener = gzip.open if source.endswith('.gz') else open
    with opener(source, 'rb') as handle:
        documents = list(yaml.safe_load_all(handle))
    scenarios = []
    test_count = 0
    for document in documents:
        if not document:
            continue
        tests = []
        for name, test in document['tests'].items():
            result = test['result']
            if isinstance(result, str):
                result = [result]
            converted = {
                'name': name,
                'spec': str(test.get('spec', '')),
                'helo': str(test['helo']),
                'host': str(test['host']),
                'mailfrom': str(test['mailfrom']),
                'result': [str(r) for r in result],
            }
            if 'explanation' in test:
                converted['explanation'] = str(test['explanation'])
            tests.append(converted)
        test_count += len(tests)
        zonedata = {}
        for name, entries in (document.get('zonedata') or {}).items():
            zonedata[str(name)] = [entry(e) for e in (entries or [])]
        scenarios.append({
            'description': str(document.get('description', '')),
            'zonedata': zonedata,
            'tests': tests,
        })
    out = {
        'source': 'rfc7208-tests.yml (openspf.org test suite release 2014.04, BSD licence), '
                  'from Debian python3-spf, converted by scripts/spf-suite-to-json.py',
        'scenarioCount': len(scenarios),
        'testCount': test_count,
        'scenarios': scenarios,
    }
    with open(target, 'w', encoding='utf-8') as handle:
        json.dump(out, handle, indent=1, ensure_ascii=False, sort_keys=False)
        handle.write('\n')
    print('%d scenarios, %d tests -> %s' % (len(scenarios), test_count, target))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        raise SystemExit('usage: spf-suite-to-json.py SUITE.yml[.gz] OUT.json')
    main(sys.argv[1], sys.argv[2])
