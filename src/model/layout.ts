import { join } from 'node:path';
import { instancesFile } from '../instances/instances.js';

/** Where things live under the staging root. */
export const layout = {
  meta: (root: string) => join(root, '.karlstage'),
  state: (root: string) => join(root, '.karlstage', 'state.json'),
  /** A copy of the last good state, for "karlstage repair". */
  stateBackup: (root: string) => join(root, '.karlstage', 'state.json.last-good'),
  /** What a branch site says of itself (name, slot, port, ref): state.json can be rebuilt from it. */
  siteMarker: (root: string, branch: string) => join(root, branch, '.karlstage-site.json'),
  locks: (root: string) => join(root, '.karlstage', 'locks'),
  logs: (root: string) => join(root, '.karlstage', 'logs'),
  /** What each running karlstage has started (pids), for the run that takes over a dead one's lock. */
  runs: (root: string) => join(root, '.karlstage', 'runs'),
  pending: (root: string, branch: string) => join(root, '.karlstage', 'pending', `${branch}.json`),
  pendingDir: (root: string) => join(root, '.karlstage', 'pending'),
  branch: (root: string, branch: string) => join(root, branch),
  instancesIni: (root: string, branch: string) => instancesFile(join(root, branch)),
  /** The site list (served at / by the routes). */
  sites: (root: string) => join(root, '.karlstage', 'sites'),
  /** karlstage's list of the users who may open the TLS host (hashes only; 0600). */
  accessUsers: (root: string) => join(root, '.karlstage', 'access', 'users.json'),
  /** The same users as nginx reads them (name:hash; readable by the web server's group). */
  accessHtpasswd: (root: string) => join(root, '.karlstage', 'access', 'htpasswd'),
  /** The testers' mail addresses, the file every instance's mail_white_list names (its name is older). */
  testersFile: (root: string) => join(root, '.karlstage', 'mail-allow-list.txt'),
  /** Postfix's maps (transport, relay_domains) and what "karlstage deliver" reads (mailboxes.json). */
  mail: (root: string) => join(root, '.karlstage', 'mail'),
  mailboxes: (root: string) => join(root, '.karlstage', 'mail', 'mailboxes.json'),
  /** Mail the branch sites sent to anyone but a tester: kept here instead of leaving the host. */
  caught: (root: string) => join(root, '.karlstage', 'mail', 'caught'),
  /** Each production server's identity as last asked: the guard for repairs on a night it cannot be asked. */
  productions: (root: string) => join(root, '.karlstage', 'productions.json'),
  /** Each branch site's activity: nginx appends a line per logged-in request (the mtime is what counts). */
  activityDir: (root: string) => join(root, '.karlstage', 'activity'),
  activity: (root: string, branch: string) => join(root, '.karlstage', 'activity', `${branch}.log`),
  /** The wake service's socket (nginx's workers and root may reach it, nobody else). */
  wakeDir: (root: string) => join(root, '.karlstage', 'wake'),
  wakeSocket: (root: string) => join(root, '.karlstage', 'wake', 'wake.sock'),
  /** The bare git repository every git branch site takes its objects from. */
  gitStore: (root: string) => join(root, '.karlstage', 'git', 'source.git'),
};
