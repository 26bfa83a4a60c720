// The GitHub REST API, through @actions/github's Octokit, limited to what the action uses.
import { getOctokit } from '@actions/github';

export class GitHubApi {
  private readonly octokit: ReturnType<typeof getOctokit>;
  private readonly owner: string;
  private readonly repo: string;

  constructor(token: string, apiUrl: string, repository: string) {
    this.octokit = getOctokit(token, { baseUrl: apiUrl });
    const [owner = '', repo = ''] = repository.split('/');
    this.owner = owner;
    this.repo = repo;
  }

  /** Whether a workflow run has ended (completed, cancelled, failed). */
  async runEnded(runId: string): Promise<boolean> {
    const { data } = await this.octokit.rest.actions.getWorkflowRun({ owner: this.owner, repo: this.repo, run_id: Number(runId) });
    return data.status === 'completed';
  }
}
