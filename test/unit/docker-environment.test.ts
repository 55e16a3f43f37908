import { describe, expect, it } from 'vitest';
import { environmentHostConfig } from '../../packages/runtime/src/backends/docker/backend.js';

describe("a prepared environment in a Docker container's host config", () => {
  it('binds each prepared path read-only over /workspace, and a capped tmpfs per hole', () => {
    const tree = '/cache/environments/k/tree';
    expect(
      environmentHostConfig(tree, ['node_modules/', '.env.local', 'packages/a/node_modules/']),
    ).toEqual({
      Mounts: [
        {
          Type: 'bind',
          Source: `${tree}/node_modules`,
          Target: '/workspace/node_modules',
          ReadOnly: true,
        },
        {
          Type: 'bind',
          Source: `${tree}/.env.local`,
          Target: '/workspace/.env.local',
          ReadOnly: true,
        },
        {
          Type: 'bind',
          Source: `${tree}/packages/a/node_modules`,
          Target: '/workspace/packages/a/node_modules',
          ReadOnly: true,
        },
      ],
      Tmpfs: {
        '/workspace/node_modules/.cache': 'rw,exec,size=256m,mode=1777',
        '/workspace/node_modules/.vite': 'rw,exec,size=256m,mode=1777',
      },
    });
  });

  it('has no hole without node_modules/, and nothing at all without paths', () => {
    expect(environmentHostConfig('/t', ['.venv/'])).toEqual({
      Mounts: [{ Type: 'bind', Source: '/t/.venv', Target: '/workspace/.venv', ReadOnly: true }],
    });
    expect(environmentHostConfig('/t', [])).toEqual({});
  });

  it('takes a name with a colon as it is: mounts are not parsed', () => {
    expect(environmentHostConfig('/t', ['a:b/'])).toMatchObject({
      Mounts: [{ Source: '/t/a:b', Target: '/workspace/a:b' }],
    });
  });
});
