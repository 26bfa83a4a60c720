// command: build — build the image for the release, push its tags, report the registry's digest.
import * as core from '@actions/core';
import Dockerode from 'dockerode';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { DockerCli, checkBuildEngine } from '../drivers/docker-cli.js';
import { RegistryError, resolveDigest } from '../drivers/registry.js';
import { InputError, readSecretValues, type Inputs } from '../inputs.js';
import { planCache } from '../release/build-cache.js';
import { imageMetadata, splitRepository } from '../release/image.js';
import { releaseFromRun } from '../release/version.js';
import { writeSummary } from '../report/summary.js';

export type Outputs = Record<string, string>;

/** Saved for the post step: the private DOCKER_CONFIG (registry credential) of a cancelled build. */
export const DOCKER_CONFIG_STATE = 'docker-config';

/** The post step: a cancelled build skips its finally; remove its private DOCKER_CONFIG. */
export async function removeLeftoverDockerConfig(saved: string): Promise<void> {
  if (await DockerCli.removeLeftover(saved)) core.info('Removed the private DOCKER_CONFIG a cancelled build left');
}

async function exists(path: string, kind: 'file' | 'directory'): Promise<boolean> {
  const info = await stat(path).catch(() => null);
  return info !== null && (kind === 'file' ? info.isFile() : info.isDirectory());
}

export async function build(inputs: Inputs, config: Config): Promise<Outputs> {
  // Everything that can be checked locally is checked before the registry is contacted.
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  readSecretValues(config.build.secrets, 'build.secrets');
  checkBuildEngine(process.env.DOCKER_HOST);
  const { username, password } = inputs.registry;
  if (Boolean(username) !== Boolean(password)) {
    throw new InputError('registry-username and registry-password: give both or neither');
  }
  const context = resolve(inputs.run.workspace, config.build.context);
  if (!(await exists(context, 'directory'))) {
    throw new InputError(`build.context: directory ${context} does not exist`);
  }
  if (!(await exists(join(context, config.build.dockerfile), 'file'))) {
    throw new InputError(`build.dockerfile: ${join(context, config.build.dockerfile)} does not exist`);
  }
  const registry = splitRepository(config.image).registry;
  const repoUrl = inputs.run.repository ? `${inputs.run.serverUrl}/${inputs.run.repository}` : '';
  const metadata = imageMetadata(config.image, release, config.build.latest, {
    revision: inputs.run.sha,
    sourceUrl: repoUrl,
    created: new Date(),
  });

  const cli = await DockerCli.open(inputs.run.tempDir, (dir) => core.saveState(DOCKER_CONFIG_STATE, dir));
  let digest: string | null;
  try {
    const cache = planCache(
      {
        type: config.build.cache,
        mode: config.build['cache-mode'],
        ref: config.build['cache-ref'] ?? `${config.image}:buildcache`,
        scope: config.image,
      },
      cli.builder,
      process.env,
    );
    for (const warning of cache.warnings) core.warning(warning);
    if (username) {
      await core.group(`Log in to ${registry}`, () => cli.login(registry, username, password));
    } else {
      core.info(`No registry credentials given: pushing to ${registry} with none.`);
    }
    await core.group(`${cli.pushesOnBuild ? 'Build and push' : 'Build'} ${metadata.tags.join(', ')}`, () =>
      cli.build({
        context,
        dockerfile: config.build.dockerfile,
        target: config.build.target,
        args: { ...config.build.args, DEPLOY_VERSION: release.tag, DEPLOY_REVISION: inputs.run.sha },
        secrets: config.build.secrets,
        labels: metadata.labels,
        tags: [...metadata.tags, ...cache.tags],
        cacheFlags: cache.flags,
      }),
    );
    if (!cli.pushesOnBuild) {
      await core.group('Push', async () => {
        for (const tag of [...metadata.tags, ...cache.tags]) await cli.push(tag);
      });
    }
    digest = await resolveDigest(
      new Dockerode(),
      config.image,
      release.tag,
      username ? { username, password, serveraddress: registry } : undefined,
    );
  } finally {
    await cli.dispose();
    core.saveState(DOCKER_CONFIG_STATE, '');
  }
  if (!digest) throw new RegistryError(`${config.image}:${release.tag} was pushed but the registry does not list it`);

  const imageRef = `${config.image}@${digest}`;
  core.info(`Pushed ${metadata.tags.join(', ')} as ${imageRef}`);
  await writeSummary((s) =>
    s.addHeading(`Built ${release.tag}`, 3).addTable([
      [{ data: 'Image', header: true }, { data: 'Tags', header: true }, { data: 'Digest', header: true }],
      [config.image, metadata.tags.map((t) => t.slice(config.image.length + 1)).join(', '), digest as string],
    ]),
  );
  return { version: release.tag, image: config.image, digest, 'image-ref': imageRef };
}
