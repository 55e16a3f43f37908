import { describe, expect, it } from 'vitest';
import { parseMountinfo } from '../../packages/runtime/src/sandbox/mountinfo.js';
import { mountinfoLine as mount } from '../support/limits.js';

describe('mountinfo', () => {
  it('decodes the octal escapes of spaces, tabs, newlines and backslashes', () => {
    const line = mount(90, '/', '/runs/a\\040b/c\\011d\\012e\\134f', 'ext4', 'rw,discard');
    expect(parseMountinfo(`${line}\n`)).toEqual([
      {
        root: '/',
        mountPoint: '/runs/a b/c\td\ne\\f',
        fsType: 'ext4',
        superOptions: ['rw', 'discard'],
      },
    ]);
  });
});
