/**
 * The published package's shape, without building it (scripts/test-example.sh packs, installs and
 * synthesizes for real in CI): entry points, peer dependencies, runtime dependencies that match
 * what the CLI and the construct library import, and a file list without tests or tooling.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { CUTOVER_HANDLER_ENTRIES } from '../../lib/function-defaults';

const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  private?: boolean;
  main: string;
  types: string;
  exports: Record<string, unknown>;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/** `@scope/name/sub/path` → `@scope/name`, `name/sub` → `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The packages an entry imports at run time (type-only imports are erased), by esbuild's resolution. */
async function runtimePackages(entry: string): Promise<Set<string>> {
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'node',
    packages: 'external',
    write: false,
    metafile: true,
    outdir: 'out',
    logLevel: 'silent',
  });
  const builtins = new Set(builtinModules);
  const packages = new Set<string>();
  for (const input of Object.values(result.metafile.inputs)) {
    for (const imported of input.imports) {
      if (!imported.external || imported.path.startsWith('node:') || builtins.has(imported.path)) continue;
      packages.add(packageOf(imported.path));
    }
  }
  return packages;
}

describe('package.json of the published package', () => {
  it('should be publishable, with the construct library as its main entry and its declarations', () => {
    expect(pkg.private).toBeUndefined();
    expect(pkg.main).toBe('dist/lib/index.js');
    expect(pkg.types).toBe('dist/lib/index.d.ts');
    // `types` first: TypeScript takes the first matching condition.
    expect(pkg.exports['.']).toEqual({ types: './dist/lib/index.d.ts', default: './dist/lib/index.js' });
    expect(Object.keys(pkg.exports).sort()).toEqual(['.', './package.json']);
    expect(pkg.bin).toEqual({ cutover: 'bin/cutover.js' });
    expect(pkg.scripts.prepack).toBe('npm run build');
  });

  it('should take aws-cdk-lib and constructs from the app (peer dependencies), keeping them for the repository', () => {
    for (const name of ['aws-cdk-lib', 'constructs']) {
      expect(pkg.peerDependencies[name], name).toBe(`^${pkg.devDependencies[name]}`);
      expect(pkg.dependencies[name], `${name} must not be a dependency: a second copy rejects the app's Durations`).toBeUndefined();
    }
  });

  it('should depend at run time on exactly what the CLI and the construct library import', async () => {
    const imported = new Set([...(await runtimePackages('bin/cli.ts')), ...(await runtimePackages('lib/index.ts'))]);
    const provided = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]);
    const missing = [...imported].filter((name) => !provided.has(name)).sort();
    expect(missing, 'imported by the compiled CLI or library but not installed with the package').toEqual([]);
    // The handlers are prebuilt (Powertools and the other SDK clients are inside their bundles or
    // in the Lambda runtime), so nothing else belongs in `dependencies`.
    const unused = Object.keys(pkg.dependencies).filter((name) => !imported.has(name)).sort();
    expect(unused, 'installed with the package but never imported by the CLI or library').toEqual([]);
    expect(imported.has('esbuild')).toBe(false);
  });

  it('should prebuild every handler: each entry exists, and each lambda/handlers/ file is an entry', () => {
    const entries: readonly string[] = Object.values(CUTOVER_HANDLER_ENTRIES);
    for (const [name, entry] of Object.entries(CUTOVER_HANDLER_ENTRIES)) {
      expect(existsSync(path.join(ROOT, 'lambda', entry)), `${name}: lambda/${entry}`).toBe(true);
    }
    // A handler missing from CUTOVER_HANDLER_ENTRIES would have no bundle in the package, and the
    // construct using it would fail to synthesize in every app that installs it.
    const handlers = readdirSync(path.join(ROOT, 'lambda', 'handlers')).filter((file) => file.endsWith('.ts'));
    expect(handlers.filter((file) => !entries.includes(`handlers/${file}`))).toEqual([]);
  });
});

describe('npm pack', () => {
  it('should list the executable, README and docs, and no sources, tests, benchmarks or tooling', () => {
    const pack = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(pack.status, pack.stderr).toBe(0);
    const [listing] = JSON.parse(pack.stdout) as [{ files: { path: string }[] }];
    const files = listing.files.map((file) => file.path);
    for (const required of ['package.json', 'README.md', 'bin/cutover.js', 'docs/aws.md']) {
      expect(files, required).toContain(required);
    }
    const forbidden = files.filter((file) =>
      /^(test|bench|\.ci|scripts|examples|containers|integ|lambda|lib|local|ops|rehearsal|docs\/api)\//.test(file) ||
      /^bin\/.*\.ts$/.test(file) ||
      /^(cdk\.json|tsconfig.*\.json|vitest.*|stryker.*|package-lock\.json)$/.test(file) ||
      /\.test\.[jt]s$/.test(file),
    );
    expect(forbidden).toEqual([]);
    // Whatever dist/ holds now (a build may not have run): only JavaScript, declarations and bundle maps.
    expect(files.filter((file) => file.startsWith('dist/') && !/\.(js|d\.ts|js\.map)$/.test(file))).toEqual([]);
  });
});

describe('bin/cutover.js in a checkout', () => {
  it('should run the TypeScript CLI through tsx, with no build', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'cutover.js'), '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe(pkg.version);
    expect(run.status).toBe(0);
  });
});
