// Covers: src/core/plan.ts src/context/after-change.ts src/commands/routes.ts src/commands/access.ts src/commands/mail.ts
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accessAdd, accessRemove } from '../src/commands/access.js';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { mail } from '../src/commands/mail.js';
import { routes } from '../src/commands/routes.js';
import { postfixInstalled } from '../src/publish/mail.js';
import { loadConfig } from '../src/config/config.js';
import { expectRunsAsShown, recorder, type Check } from './helpers/dry-run.js';
import { eventually } from './helpers/nginx.js';
import { postfixServer } from './helpers/postfix.js';
import { servedStaging } from './helpers/served.js';

/**
 * The dry run = the real run for what publishes the branch sites: the routes on a real nginx
 * (installed by create and destroy too), the users who may open the TLS host (a chosen
 * password's hash is a step of its own), and staged mail on a real private postfix (mail
 * --install, moving a customer's mail, and what create and destroy tell postfix).
 */
describe('a dry run shows exactly what runs: routes, access and mail', () => {
  it('create, routes, access add and remove, mail --install, mail CUSTOMER BRANCH, destroy', async () => {
    const { st, get } = await servedStaging();
    // postfix delivers as nobody, who must get through to the branch sites' Maildirs.
    await chmod(dirname(st.root), 0o755);
    const pf = await postfixServer();
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^mail_domain = .*$/m,
        'mail_domain = mail.karltest.example.com',
      ) + `\n${pf.section}`,
    );
    const rec = recorder();
    const b1 = { ...st.g, branch: 'branch1' };
    const bob = { ...st.g, user: 'bob', customers: ['osf'], password: 'a chosen password 1' };
    let bobGotIn = 0;
    const checks: Check[] = [
      { name: 'create', dry: () => create({ ...b1, dryRun: true }), real: () => create(b1) },
      { name: 'routes', dry: () => routes({ ...st.g, dryRun: true }), real: () => routes(st.g) },
      {
        name: 'access add (a chosen password)',
        dry: () => accessAdd({ ...bob, dryRun: true }),
        real: async () => {
          await accessAdd(bob);
          const r = await eventually(
            () => get('/branch1/osf/', { user: `bob:${bob.password}` }),
            (x) => x.status === 200,
          );
          bobGotIn = r.status;
        },
      },
      {
        name: 'access remove',
        dry: () => accessRemove({ ...st.g, user: 'bob', dryRun: true }),
        real: () => accessRemove({ ...st.g, user: 'bob' }),
      },
      {
        name: 'mail --install',
        dry: () => mail({ ...st.g, install: true, dryRun: true }),
        real: () => mail({ ...st.g, install: true }),
      },
      {
        name: 'mail another branch1',
        dry: () => mail({ ...st.g, customer: 'another', branch: 'branch1', dryRun: true }),
        real: () => mail({ ...st.g, customer: 'another', branch: 'branch1' }),
      },
      {
        name: 'destroy',
        dry: () => destroy({ ...b1, dryRun: true }),
        real: () => destroy({ ...b1, yes: true }),
      },
    ];
    await expectRunsAsShown(rec, checks);
    // What the real runs did: bob got in, then not; postfix runs karlstage's configuration.
    expect(bobGotIn).toBe(200);
    expect((await get('/branch1/osf/', { user: `bob:${bob.password}` })).status).toBe(401);
    expect(await postfixInstalled(loadConfig(st.config))).toBe(true);
  });
});
