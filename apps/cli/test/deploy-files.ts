/**
 * Readers for the deployment files in deploy/ (Dockerfile, compose file, systemd unit),
 * so the deploy tests run exactly the commands, user and paths those files declare
 * instead of a copy of them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
export const deployDir = join(root, 'deploy');

export interface Copy {
  readonly from: string | undefined;
  readonly src: string;
  readonly dest: string;
}

export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  workdir: string;
  user: string | undefined;
  readonly env: Record<string, string>;
  readonly copies: Copy[];
  readonly runs: string[];
  volumes: string[];
  expose: string[];
  entrypoint: string[];
  cmd: string[];
  healthcheck: { readonly options: string[]; readonly cmd: string[] } | undefined;
}

const execForm = (text: string, what: string): string[] => {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`${what} must be in exec (JSON array) form: ${text}`);
  return parsed as string[];
};

/** The stages of a Dockerfile, in order, with the instructions the tests care about. */
export function readDockerfile(file = join(deployDir, 'Dockerfile')): Stage[] {
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const op = keyword.toUpperCase();
    if (op === 'FROM') {
      const [image = '', as, name] = rest.split(/\s+/);
      stages.push({
        image,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        workdir: '/',
        user: undefined,
        env: {},
        copies: [],
        runs: [],
        volumes: [],
        expose: [],
        entrypoint: [],
        cmd: [],
        healthcheck: undefined,
      });
      continue;
    }
    const st = stages.at(-1);
    if (st === undefined) {
      if (op === 'ARG') continue;
      throw new Error(`${op} before FROM`);
    }
    switch (op) {
      case 'WORKDIR':
        st.workdir = rest.startsWith('/') ? rest : join(st.workdir, rest);
        break;
      case 'USER':
        st.user = rest;
        break;
      case 'ENV':
        for (const m of rest.matchAll(/(\w+)=("[^"]*"|\S+)/g))
          st.env[m[1] ?? ''] = (m[2] ?? '').replace(/^"|"$/g, '');
        break;
      case 'COPY': {
        const words = rest.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop() ?? '';
        for (const src of paths) st.copies.push({ from, src, dest });
        break;
      }
      case 'RUN':
        st.runs.push(rest);
        break;
      case 'VOLUME':
        st.volumes = execForm(rest, 'VOLUME');
        break;
      case 'EXPOSE':
        st.expose = rest.split(/\s+/);
        break;
      case 'ENTRYPOINT':
        st.entrypoint = execForm(rest, 'ENTRYPOINT');
        break;
      case 'CMD':
        st.cmd = execForm(rest, 'CMD');
        break;
      case 'HEALTHCHECK': {
        const at = rest.indexOf(' CMD ');
        if (at < 0) throw new Error(`HEALTHCHECK without CMD: ${rest}`);
        st.healthcheck = {
          options: rest.slice(0, at).trim().split(/\s+/),
          cmd: execForm(rest.slice(at + 5).trim(), 'HEALTHCHECK CMD'),
        };
        break;
      }
      default:
        break;
    }
  }
  return stages;
}

/** The compose file, parsed. */
export function readCompose(file = join(deployDir, 'compose.yaml')): {
  services: Record<string, Record<string, unknown>>;
  volumes?: Record<string, unknown>;
} {
  return parseYaml(readFileSync(file, 'utf8')) as ReturnType<typeof readCompose>;
}

/** A systemd unit's `[Service]` (and other) settings: `Section.Key` -> every value. */
export function readUnit(file = join(deployDir, 'parley-relay.service')): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

/** Whether a command is on PATH (the deploy tests fail, not skip, when one is missing). */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
