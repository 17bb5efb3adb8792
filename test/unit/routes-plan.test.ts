// Covers: src/core/plan.ts src/publish/routes.ts
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { previewOfStep } from '../../src/core/plan.js';
import { routesPlan } from '../../src/publish/routes.js';

/** The routes' install plan, built from the configuration alone: no nginx runs. */
const cfg = parseConfig(
  `[staging]\nhost = h.example.org\ndatabase = host=db\nnginx_conf = /etc/nginx/conf.d/karlstage.conf\nnginx = /usr/sbin/nginx\nreload = /usr/sbin/nginx -s reload\n[source]\nurl = https://g.example.org/k.git\n[deployment]\nskeleton = /skel\n`,
  '/srv/ks/karlstage.ini',
);

describe('the routes plan', () => {
  it('writes beside the installed file, checks it with nginx -t in a folder known only then, swaps it in and reloads (the old one back when the reload fails)', () => {
    const plan = routesPlan(cfg, 'server {}\n', 'routes', ['branch1']);
    const conf = '/etc/nginx/conf.d/karlstage.conf';
    expect(plan.command).toBe('routes');
    expect(
      plan.jobs.map((j) => [j.name, ...j.steps.flatMap((s) => [s.title, ...previewOfStep(s)])]),
    ).toEqual([
      [
        'routes',
        'write the new routes beside the installed ones',
        `write ${conf}.karlstage-new`,
        'give [access] group (www-data) read access to /srv/ks/.karlstage/access/htpasswd',
        'make /srv/ks/.karlstage/activity/BRANCH.log where missing',
        'check them with nginx -t',
        "$ /usr/sbin/nginx -t -q -p '<TMP>' -c '<TMP/check.conf>'",
        `write TMP/check.conf (it includes only ${conf}.karlstage-new), removed afterwards`,
        `install ${conf} and reload`,
        '$ /usr/sbin/nginx -s reload',
        '$ /usr/sbin/nginx -s reload   [when the reload failed]',
        `rename ${conf}.karlstage-new to ${conf} (the old one kept as ${conf}.karlstage-previous)`,
        "check that nginx's workers can read the users file and the site list",
      ],
    ]);
  });

  it('a path nginx would read differently is refused before anything is planned', () => {
    const bad = { ...cfg, staging: { ...cfg.staging, nginxConf: '/etc/nginx/my conf.conf' } };
    expect(() => routesPlan(bad, '')).toThrow(/nginx paths here may not contain spaces/);
  });
});
