// The start and end of a test file that deploys to production's first two hosts: the GitHub
// stand-in, the releases pushed, every production host cleared and the first release deployed;
// afterwards the stand-in closed and the hosts cleared again, whatever the tests left.
import { clearHosts, runDeploy } from './deploy.js';
import { loadEstate, type Estate } from './estate.js';
import { startGitHub, type GitHubStandIn } from './github.js';
import { pushTestApp, type TestAppBuild } from './images.js';

export async function startOnProduction(builds: TestAppBuild[], first: string): Promise<{ estate: Estate; github: GitHubStandIn }> {
  const estate = loadEstate();
  const github = await startGitHub();
  for (const build of builds) await pushTestApp(estate, build);
  await clearHosts(estate, estate.environments.production.hosts);
  const deployed = await runDeploy(estate, { environment: 'production', githubUrl: github.url, version: first });
  if (deployed.code !== 0) throw new Error(deployed.log);
  return { estate, github };
}

export async function leaveProduction(estate: Estate | undefined, github: GitHubStandIn | undefined): Promise<void> {
  await github?.close();
  if (estate) await clearHosts(estate, estate.environments.production.hosts);
}
