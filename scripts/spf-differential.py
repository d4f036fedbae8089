#!/usr/bin/python3
"""Random SPF scenarios answered by an independent implementation: pyspf (Debian's
python3-spf), the library behind postfix-policyd-spf-python.

Writes scenarios in the shape of Tests/Fixtures/spf/rfc7208-tests.json (the conformance
suite's JSON), each test's expected result being pyspf's, so that the Swift test
SPFDifferentialTests runs them through vrules' evaluator exactly as it runs the suite:

    /usr/bin/python3 scripts/spf-differential.py SEED SCENARIOS OUT.json

pyspf is asked as the suite's own driver asks it: its DNSLookup is replaced by a lookup in
the scenario's zone data (names are case-insensitive; a TIMEOUT entry makes every question
about its name a temporary error). The same seed gives the same scenarios.

Generated: SPF records of random terms (every mechanism, qualifiers, dual CIDR lengths,
redirect, exp, unknown modifiers, macros with every letter, transformer and delimiter, and
some syntax errors), A/AAAA/MX/PTR/CNAME data for them to match, timeouts, several records,
and senders with odd local parts or none.

Where pyspf departs from RFC 7208 (docs/spf.md, "Where it differs from pyspf"), the
scenarios are built around it (no unknown modifier twice, no %{x0}, no delimiters on %{v},
no explanation ending in %%, no %{i} in explanations, no timeout on a name a PTR record or
an alias gives), pyspf is given a sender without a local part as postmaster@domain, or both
results are allowed (void lookups, an mx host's timeout); a test
where pyspf refuses an include of the domain itself is left out and counted. Not made:
%{r} and %{t} (the receiving host and the time differ), upper-case modifier names, labels
over 63 characters.
"""
import ipaddress
import json
import random
import socket
import sys

import spf

DOMAINS = ['s%d.example' % n for n in range(6)]
V4_CLIENTS = ['192.0.2.%d' % n for n in (1, 10, 77, 200)] + ['198.51.100.%d' % n for n in (3, 25)]
V6_CLIENTS = ['2001:db8::1', '2001:db8:5::25', '2001:db8:ff::7']
LOCAL_PARTS = ['alice', 'bob.smith', 'a+tag', 'x-y_z', 'first.last.name', 'postmaster', 'Mixed.Case']
DELIMITERS = '.-+,/_='
LETTERS = 'slodiphv'
EXP_LETTERS = 'slodiphvc'


class Scenario:
    def __init__(self, rng, index):
        self.rng = rng
        self.index = index
        self.zone = {}

    def add(self, name, rtype, value):
        # An RRset holds no two identical records (RFC 2181 §5): a server serves one.
        entries = self.zone.setdefault(name.lower(), [])
        if (rtype, value) not in entries:
            entries.append((rtype, value))

    # -- macros and targets

    def macro(self, letters=LETTERS):
        rng = self.rng
        letter = rng.choice(letters)
        if rng.random() < 0.1:
            letter = letter.upper()
        digits = ''
        if rng.random() < 0.25:
            digits = str(rng.choice([1, 2, 3, 5, 12]))
        reverse = 'r' if rng.random() < 0.3 else ''
        delimiters = ''.join(rng.sample(DELIMITERS, rng.choice([0, 0, 0, 1, 2])))
        if letter in 'vV':
            # pyspf does not split %{v} ("in-addr") on its delimiters.
            delimiters = ''
        if rng.random() < 0.15 and not digits and not reverse and not delimiters:
            return '%' + '{' + letter + '}'
        return '%{' + letter + digits + reverse + delimiters + '}'

    def domain_spec(self):
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            return rng.choice(DOMAINS) if rng.random() < 0.6 else rng.choice(['mail.', 'a.', 'nx.', 'alias.', 'spf-alias.']) + rng.choice(DOMAINS)
        if roll < 0.6:
            return rng.choice(['%{d}', '%{d2}', '%{o}', '%{h}', '%{d}.'])
        if roll < 0.8:
            return '%s.%s' % (self.macro(), rng.choice(['rbl.example', '_spf.%{d}', rng.choice(DOMAINS)]))
        if roll < 0.97:
            return '%s.%s.%s' % (self.macro(), self.macro(), rng.choice(DOMAINS))
        # something odd: escapes, a bad macro, an empty label, a bare top label
        return rng.choice(['%%.%{d}', '%_%{l}.rbl.example', '%-x.%{d}', '%x.%{d}', '%{z}.%{d}',
                           'a..%{d}', '%{d}.123', '%', 'rbl.example%', '%{l}%{l}%{l}%{l}%{l}.rbl.example'])

    def cidr(self, family):
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            return ''
        top = 32 if family == 4 else 128
        if roll < 0.98:
            return '/%d' % rng.choice([0, 8, 16, 24, 28, 31, top] if family == 4 else [0, 32, 48, 64, 112, top])
        return rng.choice(['/%d' % (top + 1), '/', '/08', '/x'])

    def network(self, family):
        rng = self.rng
        if family == 4:
            base = rng.choice(V4_CLIENTS + ['203.0.113.9', '192.0.2.0'])
            if rng.random() < 0.02:
                base = rng.choice(['192.0.2', '192.0.2.256', '1.2.3.4.5'])
        else:
            base = rng.choice(V6_CLIENTS + ['2001:db8::', '::ffff:192.0.2.1'])
            if rng.random() < 0.02:
                base = rng.choice(['2001:db8:::1', '2001:db8::g'])
        return base + self.cidr(family)

    def term(self):
        rng = self.rng
        qualifier = rng.choice(['', '', '', '+', '-', '~', '?'])
        kind = rng.choice(['ip4', 'ip4', 'ip6', 'a', 'a', 'mx', 'mx', 'ptr', 'include', 'include',
                           'exists', 'exists', 'all', 'redirect', 'exp', 'unknown'])
        if rng.random() < 0.02:
            kind = 'bad'
        if kind == 'ip4':
            return qualifier + 'ip4:' + self.network(4)
        if kind == 'ip6':
            return qualifier + 'ip6:' + self.network(6)
        if kind in ('a', 'mx'):
            target = ':' + self.domain_spec() if rng.random() < 0.6 else ''
            cidr = self.cidr(4)
            if rng.random() < 0.3:
                cidr += '/' + self.cidr(6)
            return qualifier + kind + target + cidr
        if kind == 'ptr':
            return qualifier + 'ptr' + (':' + self.domain_spec() if rng.random() < 0.5 else '')
        if kind == 'include':
            return qualifier + 'include:' + self.domain_spec()
        if kind == 'exists':
            return qualifier + 'exists:' + self.domain_spec()
        if kind == 'all':
            return qualifier + 'all'
        if kind == 'redirect':
            return 'redirect=' + self.domain_spec()
        if kind == 'exp':
            return 'exp=' + rng.choice(['why.%s' % rng.choice(DOMAINS), 'why.%{d}', 'nx.why.%{d}', '%{l}.why.%{d}'])
        if kind == 'unknown':
            return rng.choice(['x-note=%{d}', 'moo=cow', 'v2=%{l}'])
        return rng.choice(['foo', 'ip4', 'ip4:', 'a:', 'all:x', 'include', 'exists', 'exp=',
                           'redirect', '-', 'ip4:192.0.2.1/24/', 'mx//', 'ptr:%{d', 'A:%{d}'])

    def record(self):
        rng = self.rng
        terms = []
        for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5, 6])):
            term = self.term()
            name = term.split('=')[0] + '='
            if '=' in term and name not in ('redirect=', 'exp=') and any(t.startswith(name) for t in terms):
                continue
            terms.append(term)
        if rng.random() < 0.4:
            terms.append(rng.choice(['-', '-', '~', '?', '']) + 'all')
        version = 'v=spf1' if rng.random() < 0.95 else rng.choice(['V=SPF1', 'v=spf10', 'v=spf1x'])
        text = ' '.join([version] + terms)
        if rng.random() < 0.05:
            text = text.replace(' ', '  ', 1)
        return text

    def strings(self, text):
        """A TXT record's character-strings: one, or the text cut in pieces."""
        if len(text) > 12 and self.rng.random() < 0.2:
            cut = self.rng.randrange(1, len(text) - 1)
            return [text[:cut], text[cut:]]
        return [text]

    # -- zone data

    def build(self):
        rng = self.rng
        for domain in DOMAINS:
            roll = rng.random()
            if roll < 0.8:
                self.add(domain, 'TXT', self.strings(self.record()))
            elif roll < 0.87:
                self.add(domain, 'TXT', [self.record()])
                self.add(domain, 'TXT', [self.record()])
            elif roll < 0.92:
                self.add(domain, 'TXT', ['not spf'])
            elif roll < 0.95:
                self.add(domain, 'TIMEOUT', None)
            if rng.random() < 0.3:
                self.add(domain, 'TXT', ['google-site-verification=x'])
            for host in (domain, 'mail.' + domain, 'a.' + domain, 'ptr.' + domain):
                if rng.random() < 0.5:
                    self.add(host, 'A', rng.choice(V4_CLIENTS + ['203.0.113.9']))
                if rng.random() < 0.3:
                    self.add(host, 'AAAA', rng.choice(V6_CLIENTS))
            for preference in range(rng.choice([0, 1, 2, 3])):
                self.add(domain, 'MX', (10 * preference, rng.choice(['mail.', 'a.', 'nx.', 'alias.']) + rng.choice(DOMAINS)))
            if rng.random() < 0.5:
                self.add('why.' + domain, 'TXT', self.strings(self.explanation()))
                if rng.random() < 0.1:
                    # Two explanation records, or an empty one: no explanation (RFC 7208 §6.2).
                    self.add('why.' + domain, 'TXT', rng.choice([[self.explanation()], ['']]))
            if rng.random() < 0.3:
                self.add('_spf.' + domain, 'TXT', [self.record()])
            if rng.random() < 0.05:
                self.add('mail.' + domain, 'TIMEOUT', None)
            # Aliases: a host, an SPF record reached through a CNAME, and a chain of two. No
            # alias leads to a name that times out: the zone resolver's timeouts are for
            # questions about the name itself, not through an alias.
            if rng.random() < 0.4:
                self.add('alias.' + domain, 'CNAME', rng.choice(['ptr.', 'a.', 'nx.', 'alias2.']) + rng.choice(DOMAINS))
            if rng.random() < 0.2:
                self.add('alias2.' + domain, 'CNAME', rng.choice(['a.', '_spf.']) + rng.choice(DOMAINS))
            if rng.random() < 0.2:
                self.add('spf-alias.' + domain, 'CNAME', '_spf.' + rng.choice(DOMAINS))
        for client in rng.sample(V4_CLIENTS + V6_CLIENTS, 4):
            reverse = ipaddress.ip_address(client).reverse_pointer
            for _ in range(rng.choice([1, 1, 2])):
                self.add(reverse, 'PTR', rng.choice(['ptr.', 'a.', 'nx.']) + rng.choice(DOMAINS))
            if rng.random() < 0.3:
                self.add(client + '.rbl.example', 'A', '127.0.0.2')
        for client in rng.sample(V4_CLIENTS, 2):
            self.add('.'.join(reversed(client.split('.'))) + '.rbl.example', 'A', '127.0.0.2')
        for local in rng.sample(LOCAL_PARTS, 2):
            self.add(local.lower() + '.rbl.example', 'A', '127.0.0.2')

    def explanation(self):
        rng = self.rng
        parts = []
        for _ in range(rng.choice([1, 2, 3])):
            if rng.random() < 0.5:
                # %{i} of an IPv6 address: pyspf writes its nibbles in upper case.
                parts.append(self.macro(EXP_LETTERS).replace('%{i', '%{c').replace('%{I', '%{C'))
            else:
                parts.append(rng.choice(['Denied', 'see', 'for', '%%', '%_', '%-']))
        if parts[-1] == '%%':
            # pyspf takes an explanation ending in an escaped '%' for a syntax error.
            parts.append('here')
        return ' '.join(parts)

    def tests(self):
        rng = self.rng
        tests = {}
        for number in range(8):
            client = rng.choice(V4_CLIENTS + V6_CLIENTS)
            domain = rng.choice(DOMAINS)
            helo = rng.choice(['mail.' + domain, domain, 'a.' + rng.choice(DOMAINS)])
            if rng.random() < 0.08:
                # An address literal or a single label: no domain to check for the HELO identity.
                helo = rng.choice(['[192.0.2.1]', '192.0.2.1', '[IPv6:2001:db8::1]', 'localhost'])
            if rng.random() < 0.1:
                mailfrom = ''
            else:
                local = rng.choice(LOCAL_PARTS + ['per%cent', 'a=b', ''])
                mailfrom = '%s@%s' % (local, domain.upper() if rng.random() < 0.1 else domain)
            tests['d%d-%d' % (self.index, number)] = {'host': client, 'mailfrom': mailfrom, 'helo': helo}
        return tests


def asked_for_mx_host():
    """Whether pyspf asks this question for an mx mechanism's host."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == 'dns_mx':
            return True
        frame = frame.f_back
    return False


def lookup_in(zone, events, mx_host_timeouts=True):
    """pyspf's DNSLookup answering from `zone`. A timeout met on an mx mechanism's host
    is noted in `events`, and with `mx_host_timeouts` off answered as no data."""
    def lookup(name, qtype, strict=True, timeout=None, depth=0):
        labels = [label for label in name.split('.') if label]
        if any(len(label) > 63 for label in labels):
            raise spf.TempError('DNS label too long')
        entries = zone.get('.'.join(labels).lower(), [])
        if any(rtype == 'TIMEOUT' for rtype, _ in entries):
            if qtype in ('A', 'AAAA') and asked_for_mx_host():
                events.add('mx host timeout')
                if not mx_host_timeouts:
                    return []
            raise spf.TempError('DNS timeout')
        answers = []
        for rtype, value in entries:
            if rtype == 'CNAME' and qtype != 'CNAME':
                # As a resolver answers: the alias, then what its target holds.
                answers.append(((name, 'CNAME'), value))
                if depth < 8:
                    answers += lookup(value, qtype, strict, timeout, depth + 1)
                continue
            if rtype != qtype:
                continue
            if rtype == 'AAAA':
                value = socket.inet_pton(socket.AF_INET6, value)
            elif rtype == 'TXT':
                value = tuple(part.encode('utf-8') for part in value)
            answers.append(((name, rtype), value))
        return answers
    return lookup


def ask_pyspf(zone, test, void_limit=2, mx_host_timeouts=True):
    """pyspf's result, explanation (or error message) and DNS events for one test."""
    events = set()
    spf.DNSLookup = lookup_in(zone, events, mx_host_timeouts)
    spf.MAX_VOID_LOOKUPS = void_limit
    sender = test['mailfrom']
    if sender.startswith('@'):
        # RFC 7208 §4.3: a sender without a local part is postmaster@domain; pyspf keeps the
        # empty local part in %{s}.
        sender = 'postmaster' + sender
    query = spf.query(i=test['host'], s=sender, h=test['helo'], strict=True)
    query.set_default_explanation('DEFAULT')
    result, _, explanation = query.check()
    spf.MAX_VOID_LOOKUPS = 2
    return {'unknown': 'permerror', 'error': 'temperror'}.get(result, result), explanation, events


def main(seed, count, target):
    rng = random.Random(seed)
    scenarios = []
    test_count = 0
    left_out = 0
    for index in range(count):
        scenario = Scenario(rng, index)
        scenario.build()
        tests = []
        for name, test in scenario.tests().items():
            result, explanation, events = ask_pyspf(scenario.zone, test)
            runs = [(result, explanation, events)]
            if 'Void lookup limit' in explanation:
                # pyspf counts every DNS question with an empty answer (an mx mechanism's
                # hosts one by one); RFC 7208 §4.6.4 counts terms. Either result is allowed.
                runs.append(ask_pyspf(scenario.zone, test, void_limit=1000))
            if runs[-1][0] == 'temperror' and 'mx host timeout' in runs[-1][2]:
                # pyspf asks every MX host's addresses before it compares any; vrules
                # compares in MX order, as one-by-one asking would, so a host that matches
                # before the one that failed decides. Either result is allowed.
                # (Answered as no data, the failed host must not count as a void lookup.)
                runs.append(ask_pyspf(scenario.zone, test, void_limit=1000, mx_host_timeouts=False))
            if any('trivial recursion' in text for _, text, _ in runs):
                # pyspf refuses an include of the domain itself when it parses the record,
                # even where an earlier term matches and the include is never evaluated.
                left_out += 1
                continue
            results = []
            for allowed, _, _ in runs:
                if allowed not in results:
                    results.append(allowed)
            entry = dict(name=name, spec='differential', helo=test['helo'], host=test['host'],
                         mailfrom=test['mailfrom'], result=results)
            if result == 'fail':
                entry['explanation'] = explanation
            elif result in ('permerror', 'temperror'):
                entry['oracleReason'] = explanation
            tests.append(entry)
        zonedata = {}
        for name, entries in scenario.zone.items():
            # A timeout first: the Swift side times out only the types listed after it.
            converted = [{'type': 'TIMEOUT'}] if any(rtype == 'TIMEOUT' for rtype, _ in entries) else []
            for rtype, value in entries:
                if rtype == 'TIMEOUT':
                    continue
                if rtype == 'MX':
                    converted.append({'type': 'MX', 'value': [value[0], value[1]]})
                else:
                    converted.append({'type': rtype, 'value': value})
            zonedata[name] = converted
        scenarios.append({'description': 'random scenario %d (seed %s)' % (index, seed),
                          'zonedata': zonedata, 'tests': tests})
        test_count += len(tests)
    with open(target, 'w') as handle:
        json.dump({'source': 'scripts/spf-differential.py, pyspf %s, seed %s' % (spf.__version__, seed),
                   'scenarioCount': len(scenarios), 'testCount': test_count, 'leftOut': left_out, 'scenarios': scenarios},
                  handle, indent=1, sort_keys=True)


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
