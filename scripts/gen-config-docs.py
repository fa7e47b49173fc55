#!/usr/bin/env python3
"""gen-config-docs.py: rewrites docs/config.md and sparkgate.ini.example from the settings table
in src/core/config.c, so the three never drift apart (a unit test checks docs/config.md)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
src = open(os.path.join(ROOT, 'src/core/config.c')).read()
table = src[src.index('static const struct config_key keys'):]
table = table[:table.index('\n};')]

ENTRY = re.compile(r'\{\s*"([a-z_]+\.[a-z_0-9]+)",\s*CONFIG_(\w+),\s*"([^"]*)",\s*([^,]+),\s*([^,]+),'
                   r'\s*(NULL|"[^"]*"),\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}', re.S)
TYPES = {'STR': 'string', 'INT': 'integer', 'BOOL': 'boolean', 'ENUM': 'enum',
         'DURATION': 'duration', 'SIZE': 'size'}
UNITS = {'DURATION': 'ms', 'SIZE': 'bytes', 'INT': ''}

keys = []
for m in ENTRY.finditer(table):
    name, typ, default, lo, hi, choices, help_ = m.groups()
    help_text = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', help_)).replace('\\"', '"')
    keys.append((name, typ, default, lo.strip(), hi.strip(),
                 None if choices == 'NULL' else choices.strip('"'), help_text))

md = open(os.path.join(ROOT, 'docs/config.md')).read()
head = md[:md.index('\n## [')]
out = [head.rstrip('\n'), '']
ini = ['; sparkgate.ini.example: every setting with its default. Copy, uncomment and edit what you need;',
       '; run with: build/sparkgate --config sparkgate.ini. Environment variables SPARKGATE_<SECTION>_<NAME>',
       '; override the file. Full reference: docs/config.md.']
section = None
for name, typ, default, lo, hi, choices, help_text in keys:
    sec, short = name.split('.', 1)
    if sec != section:
        section = sec
        out += ['## [%s]' % sec, '']
        ini += ['', '[%s]' % sec]
    else:
        ini += ['']
    kind = 'one of ' + ', '.join(choices.split('|')) if choices else TYPES[typ]
    out += ['### `%s`' % name, '', help_text, '', '- type: %s' % kind,
            '- default: `%s`' % (default if default else '(empty)')]
    if typ in UNITS and not (lo == '0' and hi == '0'):
        unit = UNITS[typ]
        out.append('- range: %s .. %s%s' % (lo, hi, ' (%s)' % unit if unit else ''))
    out += ['- environment: `SPARKGATE_%s`' % name.replace('.', '_').upper(),
            '- example: `%s = %s`' % (short, default if default else '...'), '']
    ini += ['; ' + help_text, ';%s = %s' % (short, default)]

open(os.path.join(ROOT, 'docs/config.md'), 'w').write('\n'.join(out).rstrip('\n') + '\n')
open(os.path.join(ROOT, 'sparkgate.ini.example'), 'w').write('\n'.join(ini) + '\n')
print('%d settings' % len(keys))
