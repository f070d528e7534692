/**
 * `npm run docs:api`: the API reference in docs/api/ (Markdown, one page per export and member,
 * docs/api/index.md the entry), generated from the doc comments of the package's main entry.
 *
 * Route: tsc emits the `.d.ts` (scripts/build.ts `compile`); API Extractor reads them into a doc
 * model; API Documenter writes the Markdown. Both carry their own TypeScript (API Extractor 7.60
 * bundles TypeScript 6), which matters because TypeScript 7's native compiler has no JavaScript
 * API for typedoc to use; reading emitted declarations also documents exactly what a user's
 * compiler sees.
 *
 * The doc comments use `@default`, the aws-cdk convention (jsii reads it); TSDoc's name for it is
 * `@defaultValue`, the one API Documenter renders. The declarations are staged in a temporary
 * folder with the tag renamed there, so the sources keep the aws-cdk spelling.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage } from '@microsoft/api-extractor';
import { compile } from './build';

const ROOT = path.resolve(__dirname, '..');
const OUTPUT = path.join(ROOT, 'docs', 'api');

/** Copies the `.d.ts` files of `from` to `to`, with `@default` renamed `@defaultValue`. */
function stageDeclarations(from: string, to: string): number {
  let count = 0;
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      count += stageDeclarations(source, target);
    } else if (entry.name.endsWith('.d.ts')) {
      cpSync(source, target);
      writeFileSync(target, readFileSync(source, 'utf8').replace(/^(\s*\*\s*)@default\b/gm, '$1@defaultValue'));
      count += 1;
    }
  }
  return count;
}

function main(): void {
  compile(ROOT);
  const stage = mkdtempSync(path.join(os.tmpdir(), 'cutover-api-'));
  try {
    const staged = stageDeclarations(path.join(ROOT, 'dist'), path.join(stage, 'dist'));
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
    writeFileSync(path.join(stage, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, types: 'dist/lib/index.d.ts' }));
    // aws-cdk-lib's and constructs' types resolve from the repository's node_modules.
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(stage, 'node_modules'), 'dir');

    const config = ExtractorConfig.prepare({
      configObject: {
        projectFolder: stage,
        mainEntryPointFilePath: '<projectFolder>/dist/lib/index.d.ts',
        compiler: {
          overrideTsconfig: {
            compilerOptions: { target: 'ES2022', lib: ['ES2023'], module: 'commonjs', moduleResolution: 'node', types: ['node'], strict: true, skipLibCheck: true },
            files: ['dist/lib/index.d.ts'],
          },
        },
        apiReport: { enabled: false, reportFileName: '<unscopedPackageName>.api.md' },
        docModel: { enabled: true, apiJsonFilePath: '<projectFolder>/model/<unscopedPackageName>.api.json' },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages: {
          // Release tags (@public, @beta) are not used: everything exported is public.
          extractorMessageReporting: { 'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None } },
        },
      },
      configObjectFullPath: undefined,
      packageJsonFullPath: path.join(stage, 'package.json'),
    });
    const warnings: string[] = [];
    const result = Extractor.invoke(config, {
      localBuild: true,
      messageCallback: (message: ExtractorMessage) => {
        if (message.logLevel === ExtractorLogLevel.Warning) {
          warnings.push(message.formatMessageWithLocation(stage));
          message.handled = true;
        }
      },
    });
    if (!result.succeeded) throw new Error(`API Extractor reported ${result.errorCount} error(s); see above`);
    for (const warning of warnings) process.stderr.write(`docs:api: warning: ${warning}\n`);

    const documenter = path.join(path.dirname(require.resolve('@microsoft/api-documenter/package.json', { paths: [ROOT] })), 'bin', 'api-documenter');
    // API Documenter empties the output folder first: pages of removed exports do not linger.
    const run = spawnSync(process.execPath, [documenter, 'markdown', '--input-folder', path.join(stage, 'model'), '--output-folder', OUTPUT], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`api-documenter failed (exit ${run.status ?? run.signal}):\n${run.stdout}${run.stderr}`);
    if (!existsSync(path.join(OUTPUT, 'index.md'))) throw new Error(`api-documenter wrote no index.md in ${OUTPUT}`);
    const pages = readdirSync(OUTPUT).filter((name) => name.endsWith('.md')).length;
    process.stderr.write(`docs:api: ${pages} pages in docs/api/ from ${staged} declaration files (${warnings.length} warning(s))\n`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

main();
