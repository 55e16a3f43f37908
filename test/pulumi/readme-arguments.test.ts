import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCE = path.join(ROOT, 'packages/pulumi/src/orchestrator.ts');
const README = path.join(ROOT, 'packages/pulumi/README.md');

type Takes = 'B' | 'L' | 'P';

/** Each interface of arguments, the components that take it, and where its members go. */
const INTERFACES: { name: string; takes: Takes[]; prefix: string }[] = [
  { name: 'ImageSourceArgs', takes: ['B', 'L', 'P'], prefix: '' },
  { name: 'BatchOrchestratorArgs', takes: ['B', 'P'], prefix: '' },
  { name: 'BatchSettingsArgs', takes: ['B', 'P'], prefix: 'batch.' },
  { name: 'PrebuiltImageArgs', takes: ['B', 'P'], prefix: 'image.' },
  { name: 'LocalDockerOrchestratorArgs', takes: ['L'], prefix: '' },
  { name: 'ParallelOrchestratorArgs', takes: ['P'], prefix: '' },
];

interface Documented {
  takes: Set<Takes>;
  jsdoc: string;
}

/** Every argument the code declares, with its JSDoc: nested object types as `outer.inner`. */
function declaredArguments(): Map<string, Documented> {
  const file = ts.createSourceFile(
    SOURCE,
    readFileSync(SOURCE, 'utf8'),
    ts.ScriptTarget.Latest,
    true,
  );
  const found = new Map<string, Documented>();
  const add = (name: string, member: ts.Node, takes: Takes[]) => {
    const jsdoc = ts
      .getJSDocCommentsAndTags(member)
      .map((doc) => ts.getTextOfJSDocComment(doc.comment) ?? '')
      .join(' ')
      .trim();
    const entry = found.get(name) ?? { takes: new Set<Takes>(), jsdoc };
    for (const t of takes) entry.takes.add(t);
    found.set(name, entry);
  };
  const visitMembers = (members: ts.NodeArray<ts.TypeElement>, prefix: string, takes: Takes[]) => {
    for (const member of members) {
      if (!ts.isPropertySignature(member) || !member.name) continue;
      const name = `${prefix}${member.name.getText(file)}`;
      add(name, member, takes);
      if (member.type && ts.isTypeLiteralNode(member.type))
        visitMembers(member.type.members, `${name}.`, takes);
    }
  };
  for (const statement of file.statements) {
    if (!ts.isInterfaceDeclaration(statement)) continue;
    const spec = INTERFACES.find((i) => i.name === statement.name.text);
    if (spec) visitMembers(statement.members, spec.prefix, spec.takes);
  }
  return found;
}

/** The README's argument table: name → the components it says take it, and the default cell. */
function tableArguments(): Map<string, { takes: Set<string>; defaultCell: string }> {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('## Arguments'), text.indexOf('## Outputs'));
  const rows = new Map<string, { takes: Set<string>; defaultCell: string }>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`([a-zA-Z.]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!name) continue;
    rows.set(name, { takes: new Set((cells[2] ?? '').split(/\s+/)), defaultCell: cells[3] ?? '' });
  }
  return rows;
}

describe("the package README's argument table", () => {
  let declared: Map<string, Documented>;
  let table: ReturnType<typeof tableArguments>;
  beforeAll(() => {
    declared = declaredArguments();
    table = tableArguments();
  });

  test('lists every argument the code declares, once, with the components that take it', () => {
    expect(declared.size).toBeGreaterThan(25);
    expect([...table.keys()].sort()).toEqual([...declared.keys()].sort());
    for (const [name, { takes }] of declared)
      expect([...(table.get(name)?.takes ?? [])].sort(), name).toEqual([...takes].sort());
  });

  test('every argument is documented in the code', () => {
    const undocumented = [...declared].filter(([, d]) => d.jsdoc === '').map(([name]) => name);
    expect(undocumented).toEqual([]);
  });

  test('says each default the code uses', async () => {
    const { COMPONENT_DEFAULTS } = await import('../../packages/pulumi/src/index.js');
    for (const [key, value] of Object.entries(COMPONENT_DEFAULTS)) {
      const row = table.get(key) ?? table.get(`batch.${key}`);
      expect(row, key).toBeDefined();
      const shown = Array.isArray(value) ? value.map((v) => `\`${v}\``).join(', ') : String(value);
      expect(row?.defaultCell, key).toContain(shown);
    }
  });
});
