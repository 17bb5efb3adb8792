import { join } from 'node:path';

/** Where things live under the staging root. */
export const layout = {
  meta: (root: string) => join(root, '.karlstage'),
  state: (root: string) => join(root, '.karlstage', 'state.json'),
  locks: (root: string) => join(root, '.karlstage', 'locks'),
  logs: (root: string) => join(root, '.karlstage', 'logs'),
  pending: (root: string, branch: string) => join(root, '.karlstage', 'pending', `${branch}.json`),
  pendingDir: (root: string) => join(root, '.karlstage', 'pending'),
  branch: (root: string, branch: string) => join(root, branch),
  instancesIni: (root: string, branch: string) => join(root, branch, 'etc', 'instances.ini'),
  allowList: (root: string) => join(root, '.karlstage', 'mail-allow-list.txt'),
};
