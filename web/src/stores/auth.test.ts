import { describe, expect, it } from 'vitest';

import { can } from '@/stores/auth';

describe('can', () => {
  it('follows the RBAC matrix', () => {
    expect(can('admin', 'node.delete')).toBe(true);
    expect(can('operator', 'node.delete')).toBe(false);
    expect(can('operator', 'node.command')).toBe(true);
    expect(can('viewer', 'node.command')).toBe(false);
    expect(can('viewer', 'group.manage')).toBe(false);
    expect(can('operator', 'user.manage')).toBe(false);
    expect(can('operator', 'audit.read')).toBe(false);
    expect(can(undefined, 'node.edit')).toBe(false);
  });
});
