import { describe, expect, it } from 'vitest';

import en from '@/i18n/locales/en.json';
import zhCN from '@/i18n/locales/zh-CN.json';

type Tree = { [key: string]: string | Tree };

function flatten(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'string') out.set(path, value);
    else for (const [k, v] of flatten(value, path)) out.set(k, v);
  }
  return out;
}

const languages = { 'zh-CN': flatten(zhCN), en: flatten(en) };
const sources = import.meta.glob(['/src/**/*.{ts,tsx}', '!/src/**/*.test.{ts,tsx}', '!/src/api/generated/**'], {
  query: '?raw',
  import: 'default',
  eager: true,
}) as Record<string, string>;

/** Keys the code passes to t() as literals; a template literal (a computed key) is refused. */
function usedKeys(): { keys: Map<string, string>; computed: string[] } {
  const keys = new Map<string, string>();
  const computed: string[] = [];
  for (const [file, text] of Object.entries(sources)) {
    for (const match of text.matchAll(/\bt\(\s*(['"`])([^'"`]*)\1/g)) {
      const key = match[2] as string;
      if (match[1] === '`') computed.push(`${file}: ${key}`);
      else keys.set(key, file);
    }
  }
  return { keys, computed };
}

describe('translations', () => {
  it('have the same keys in every language', () => {
    const zh = [...languages['zh-CN'].keys()].sort();
    const english = [...languages.en.keys()].sort();
    expect(zh.filter((key) => !languages.en.has(key))).toEqual([]);
    expect(english.filter((key) => !languages['zh-CN'].has(key))).toEqual([]);
  });

  it('have no empty string and the same placeholders in every language', () => {
    for (const [key, value] of languages['zh-CN']) {
      const other = languages.en.get(key) ?? '';
      expect(value, key).not.toBe('');
      expect(other, key).not.toBe('');
      const names = (text: string) => [...text.matchAll(/{{(\w+)}}/g)].map((m) => m[1]).sort();
      expect(names(other), key).toEqual(names(value));
    }
  });

  it('hold every key the code uses, and the code uses only literal keys', () => {
    const { keys, computed } = usedKeys();
    expect(keys.size).toBeGreaterThan(100);
    expect(computed).toEqual([]);
    for (const [language, table] of Object.entries(languages)) {
      const missing = [...keys].filter(([key]) => !table.has(key)).map(([key, file]) => `${key} (${file})`);
      expect(missing, language).toEqual([]);
    }
  });

  it('leave no key unused', () => {
    const { keys } = usedKeys();
    const unused = [...languages['zh-CN'].keys()].filter((key) => !keys.has(key));
    expect(unused).toEqual([]);
  });
});
