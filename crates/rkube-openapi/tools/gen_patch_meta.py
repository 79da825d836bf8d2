#!/usr/bin/env python3
"""Prints src/patch_meta/table.rs: the list and patch markers of upstream's Go API types.

k8s-openapi's schemas lack the `x-kubernetes-*` list and patch extensions; upstream's OpenAPI
generator reads them from the Go sources (struct tags `patchStrategy`/`patchMergeKey`, comment
markers `+listType`, `+listMapKey`, `+mapType`, `+structType`). This script reads the same facts
from checkouts of k8s.io/api, k8s.io/apimachinery and k8s.io/apiextensions-apiserver at the tag
matching k8s-openapi's feature (v0.33.x for `v1_33`):

    gen_patch_meta.py API_DIR APIMACHINERY_DIR APIEXTENSIONS_DIR > src/patch_meta/table.rs
"""
import os
import re
import sys

FIELD = re.compile(r'^\s*(\w+)?\s*([^`/]*?)\s*`([^`]*)`')
TYPE = re.compile(r'^type (\w+) struct \{')
TAG = re.compile(r'(\w+):"([^"]*)"')
MARKER = re.compile(r'^\s*//\s*\+(listType|listMapKey|mapType|structType)=(\S+)')


def packages(api, machinery, ext):
    """(directory, definition prefix) of every stable API package (alpha and beta versions are not served)."""
    out = []
    for group in sorted(os.listdir(api)):
        gdir = os.path.join(api, group)
        if not os.path.isdir(gdir) or group.startswith('.'):
            continue
        for version in sorted(os.listdir(gdir)):
            vdir = os.path.join(gdir, version)
            if os.path.isdir(vdir) and re.fullmatch(r'v\d+', version):
                out.append((vdir, f'io.k8s.api.{group}.{version}'))
    out.append((os.path.join(machinery, 'pkg/apis/meta/v1'), 'io.k8s.apimachinery.pkg.apis.meta.v1'))
    out.append((os.path.join(ext, 'pkg/apis/apiextensions/v1'), 'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1'))
    return out


def parse_package(directory):
    """Returns {type: {"atomic": bool, "fields": [(json, ext dict)], "inline": [type]}}."""
    types = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.go') or name.endswith('_test.go') or name.startswith('zz_generated') or name.startswith('generated'):
            continue
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            lines = f.read().split('\n')
        current = None
        markers = []
        depth = 0
        for line in lines:
            m = MARKER.match(line)
            if m:
                markers.append((m.group(1), m.group(2)))
                continue
            if line.strip().startswith('//'):
                continue
            if current is None:
                t = TYPE.match(line)
                if t:
                    current = t.group(1)
                    atomic = any(k in ('structType', 'mapType') and v == 'atomic' for k, v in markers)
                    types[current] = {'atomic': atomic, 'fields': [], 'inline': []}
                    depth = 1
                markers = []
                continue
            depth += line.count('{') - line.count('}')
            if depth <= 0:
                current = None
                markers = []
                continue
            fm = FIELD.match(line)
            if fm and depth == 1:
                tags = dict(TAG.findall(fm.group(3)))
                json_name = tags.get('json', '').split(',')[0]
                gotype = (fm.group(2) or '').strip()
                if json_name in ('', '-'):
                    if ',inline' in tags.get('json', '') or fm.group(2) == '':
                        embedded = (fm.group(1) or gotype).split('.')[-1].lstrip('*')
                        types[current]['inline'].append(embedded)
                    markers = []
                    continue
                ext = {}
                if 'patchStrategy' in tags:
                    ext['patch_strategy'] = tags['patchStrategy']
                if 'patchMergeKey' in tags:
                    ext['merge_key'] = tags['patchMergeKey']
                keys = [v for k, v in markers if k == 'listMapKey']
                for k, v in markers:
                    if k == 'listType':
                        ext['list_type'] = v
                    if k == 'mapType':
                        ext['map_type'] = v
                if keys:
                    ext['keys'] = keys
                if ext:
                    types[current]['fields'].append((json_name, ext))
            markers = []
    return types


def flatten(types, name, seen=()):
    """Fields of a type including those of its inlined (embedded) types."""
    t = types.get(name)
    if t is None or name in seen:
        return []
    out = list(t['fields'])
    for e in t['inline']:
        out += flatten(types, e, seen + (name,))
    return out


def rust_str(s):
    return 'None' if s is None else f'Some("{s}")'


def main():
    api, machinery, ext = sys.argv[1:4]
    rows, atomics = [], []
    for directory, prefix in packages(api, machinery, ext):
        if not os.path.isdir(directory):
            continue
        types = parse_package(directory)
        for name in sorted(types):
            if types[name]['atomic']:
                atomics.append(f'{prefix}.{name}')
            for field, e in sorted(flatten(types, name)):
                keys = ', '.join(f'"{k}"' for k in e.get('keys', []))
                rows.append(f'    f("{prefix}.{name}", "{field}", {rust_str(e.get("patch_strategy"))}, '
                            f'{rust_str(e.get("merge_key"))}, {rust_str(e.get("list_type"))}, &[{keys}], '
                            f'{rust_str(e.get("map_type"))}),')
    print('//! Generated by `tools/gen_patch_meta.py` (Go sources of k8s.io/api, apimachinery, apiextensions v0.33).')
    print('')
    print('use super::{FieldMeta, f};')
    print('')
    print('/// Field markers, sorted by definition then field.')
    print('#[rustfmt::skip]')
    print('pub(super) const FIELDS: &[FieldMeta] = &[')
    print('\n'.join(rows))
    print('];')
    print('')
    print('/// Definitions upstream marks `x-kubernetes-map-type: atomic` (`+structType=atomic`).')
    print('#[rustfmt::skip]')
    print('pub(super) const ATOMIC_STRUCTS: &[&str] = &[')
    print('\n'.join(f'    "{a}",' for a in atomics))
    print('];')


if __name__ == '__main__':
    main()
