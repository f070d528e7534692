/**
 * `MigrationTarget.lambdaAlias`: the weights of a Lambda alias between the version it points at and
 * a new version. The alias is not a resource of the stack (a deploy would reset its weights): the
 * deploy trigger creates it on the first deploy and records a migration whenever `version` changes.
 */
import {
  CfnResource,
  DefaultTokenResolver,
  Reference,
  Resource,
  Stack,
  StringConcat,
  Token,
  Tokenization,
  type IPostProcessor,
  type IResolvable,
  type IResolveContext,
} from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { CutoverValidationError, show } from '../errors';
import type { IMigrationTarget, MigrationTargetBinding, TargetBindContext } from './binding';

/** Props of `MigrationTarget.lambdaAlias`. */
export interface LambdaAliasTargetProps {
  /** The function whose alias is migrated. */
  readonly function: lambda.IFunction;
  /**
   * Name of the alias clients call (API Gateway integrates with `function:<name>:<aliasName>`). It
   * must not be an `AWS::Lambda::Alias` resource of any stack, or CloudFormation would reset the
   * controller's weights.
   */
  readonly aliasName: string;
  /**
   * The version to migrate to, usually `fn.currentVersion`. `lambda.Version` is named beside
   * `IVersion` because under `exactOptionalPropertyTypes` aws-cdk-lib's own class does not satisfy
   * its interface (`role`), and a strict app should not need a cast.
   */
  readonly version: lambda.IVersion | lambda.Version;
}

const ALIAS_NAME = /^(?!\d+$)[A-Za-z0-9_-]{1,128}$/;

/** Checks a Lambda alias target's props (also the legacy `function`/`aliasName`/`version` props). */
export function validateLambdaAliasTarget(scope: TargetBindContext['scope'], props: Partial<LambdaAliasTargetProps>): void {
  const fail = (message: string): never => {
    throw new CutoverValidationError(message, scope);
  };
  if (!props.function) fail('function is required (the Lambda function whose alias is migrated)');
  if (!props.version) fail('version is required (the version to migrate to, e.g. fn.currentVersion)');
  const aliasName = props.aliasName;
  if (typeof aliasName !== 'string' || (!Token.isUnresolved(aliasName) && !ALIAS_NAME.test(aliasName))) {
    fail(`aliasName must be 1–128 letters, digits, '-' or '_' and not only digits, got ${show(aliasName)}`);
  }
  const version = props.version!.version;
  if (!Token.isUnresolved(version) && (version === '$LATEST' || !/^\d+$/.test(version))) {
    fail(`version must be a published version number (alias routing cannot use $LATEST), got ${show(version)}`);
  }
  if (props.version!.lambda !== props.function) {
    // Tokens that differ may still name one function (an import of its ARN), and equal-looking
    // ones may not: compare what each refers to (the same AWS::Lambda::Function resource, or the
    // same literal ARN or name), and fail only when they are certainly two functions.
    const versionFunction = functionFacts(props.version!.lambda);
    const migratedFunction = functionFacts(props.function!);
    if (compareFunctions(versionFunction, migratedFunction) === 'different') {
      fail(
        `version belongs to ${versionFunction.label}, not to the migrated function ${migratedFunction.label}; ` +
          'pass a version of the migrated function (usually function.currentVersion), or migrate the function that version belongs to',
      );
    }
  }
  checkVersionInMigrationStack(scope, props.version!);
}

/**
 * A version that is a resource of another (top-level) stack reaches the migration through a
 * CloudFormation export. Every release replaces the version, and CloudFormation refuses to change
 * an export another stack imports: the function's stack could never deploy its next release.
 */
function checkVersionInMigrationStack(scope: IConstruct, version: lambda.IVersion | lambda.Version): void {
  if (!Resource.isOwnedResource(version)) return;
  const versionStack = topLevelStack(Stack.of(version));
  const migrationStack = topLevelStack(Stack.of(scope));
  if (versionStack === migrationStack) return;
  throw new CutoverValidationError(
    `version ${version.node.path} is a resource of stack ${versionStack.stackName}, the migration is in stack ${migrationStack.stackName}: ` +
      `${migrationStack.stackName} would import it from an export of ${versionStack.stackName}, and CloudFormation cannot replace an exported value ` +
      `another stack imports, so the next release of the function (a new version) would fail to deploy. Create the CanaryMigration in ` +
      `${versionStack.stackName}, the function's stack, or pass the version by ARN (version: lambda.Version.fromVersionArn(this, 'Version', '<function ARN>:<version>')), which exports nothing`,
    scope,
  );
}

function topLevelStack(stack: Stack): Stack {
  let top = stack;
  while (top.nestedStackParent) top = top.nestedStackParent;
  return top;
}

/** What is known at synth about which function an `IFunction` is. */
export interface FunctionFacts {
  /** The `AWS::Lambda::Function` resource it refers to (a function of this app, or an import of its ARN). */
  readonly resource?: CfnResource;
  /** Its ARN, when it is a literal. */
  readonly arn?: string;
  /** Its name, when it is a literal (the function's `functionName`, or the physical name of its resource). */
  readonly name?: string;
  /** How an error message names it: the construct path of its resource, else its ARN or name, else its construct path. */
  readonly label: string;
}

/** What is known at synth about which function `fn` is (see `compareFunctions`). */
export function functionFacts(fn: lambda.IFunction): FunctionFacts {
  const stack = Stack.of(fn);
  const owned = Resource.isOwnedResource(fn) && isLambdaFunctionResource(fn.node.defaultChild) ? (fn.node.defaultChild as CfnResource) : undefined;
  const referenced = referencedResources(stack, fn.functionArn).filter(isLambdaFunctionResource);
  const resource = owned ?? (referenced.length === 1 ? referenced[0] : undefined);
  const arn = literal(stack.resolve(fn.functionArn));
  const physicalName = resource instanceof lambda.CfnFunction ? literal(Stack.of(resource).resolve(resource.functionName)) : undefined;
  const name = literal(stack.resolve(fn.functionName)) ?? physicalName;
  const label = resource ? resourcePath(resource) : (arn ?? name ?? fn.node.path);
  return { ...(resource ? { resource } : {}), ...(arn ? { arn } : {}), ...(name ? { name } : {}), label };
}

/**
 * Whether two functions are certainly the same, certainly different, or cannot be told apart at
 * synth (tokens whose values are only known at deploy).
 */
export function compareFunctions(a: FunctionFacts, b: FunctionFacts): 'same' | 'different' | 'unknown' {
  if (a.resource && b.resource) return a.resource === b.resource ? 'same' : 'different';
  if (a.arn && b.arn) return a.arn === b.arn ? 'same' : 'different';
  // Two different names are two functions; one name may be two functions (accounts, regions).
  if (a.name && b.name && !a.name.includes(':') && !b.name.includes(':') && a.name !== b.name) return 'different';
  return 'unknown';
}

/**
 * The CloudFormation resources a value refers to (`Ref`, `Fn::GetAtt`), found through its tokens
 * without resolving it for another stack.
 */
export function referencedResources(scope: IConstruct, value: unknown): CfnResource[] {
  const found = new Set<CfnResource>();
  class ReferenceRecorder extends DefaultTokenResolver {
    constructor() {
      super(new StringConcat());
    }
    override resolveToken(token: IResolvable, context: IResolveContext, postProcessor: IPostProcessor): unknown {
      if (Reference.isReference(token) && CfnResource.isCfnResource(token.target)) found.add(token.target);
      return super.resolveToken(token, context, postProcessor);
    }
  }
  Tokenization.resolve(value, { scope, resolver: new ReferenceRecorder(), preparing: false });
  return [...found];
}

function isLambdaFunctionResource(construct: IConstruct | undefined): construct is CfnResource {
  return construct !== undefined && CfnResource.isCfnResource(construct) && construct.cfnResourceType === 'AWS::Lambda::Function';
}

/** The path of the L2 construct that owns a resource (`Stack/Api`, not `Stack/Api/Resource`). */
export function resourcePath(resource: CfnResource): string {
  return resource.node.path.replace(/\/Resource$/, '');
}

function literal(value: unknown): string | undefined {
  return typeof value === 'string' && !Token.isUnresolved(value) ? value : undefined;
}

/** The aliases migrated in an app (keyed by its root): one `CanaryMigration` per function and alias name. */
const MIGRATED_ALIASES = new WeakMap<IConstruct, Map<string, string>>();

/**
 * Records that `migration` migrates `aliasName` of `fn`, or fails when another migration of the
 * same app already does: both deploy triggers would start migrations and both controllers would
 * move the same weights.
 */
export function claimAlias(migration: IConstruct, fn: lambda.IFunction, aliasName: string): void {
  const facts = functionFacts(fn);
  const stack = Stack.of(migration);
  const functionKey = facts.resource
    ? `resource ${facts.resource.node.path}`
    : facts.arn
      ? `arn ${facts.arn}`
      : `in ${stack.node.path}: ${JSON.stringify(Stack.of(fn).resolve(fn.functionArn))}`;
  const key = `${functionKey} alias ${Token.isUnresolved(aliasName) ? JSON.stringify(stack.resolve(aliasName)) : aliasName}`;
  const root = migration.node.root;
  const claimed = MIGRATED_ALIASES.get(root) ?? new Map<string, string>();
  MIGRATED_ALIASES.set(root, claimed);
  const other = claimed.get(key);
  if (other !== undefined && other !== migration.node.path) {
    throw new CutoverValidationError(
      `alias ${show(aliasName)} of function ${facts.label} is already migrated by ${other}: an alias takes one CanaryMigration ` +
        '(two would each start a migration on deploy and move the same weights against each other). Keep one CanaryMigration per alias ' +
        'and use its migration.alias wherever the alias is needed, or give this one another aliasName',
      migration,
    );
  }
  claimed.set(key, migration.node.path);
}

/**
 * Fails when the app also has an `AWS::Lambda::Alias` resource of `fn` named `aliasName`
 * (`fn.addAlias`, `new lambda.Alias`): CloudFormation would set its routing back to the template's
 * version on every deploy, in the middle of a migration. Run at synth, once the app is complete.
 */
export function checkNoAliasResource(migration: IConstruct, fn: lambda.IFunction, aliasName: string): void {
  const facts = functionFacts(fn);
  for (const construct of migration.node.root.node.findAll()) {
    if (!(construct instanceof lambda.CfnAlias)) continue;
    const stack = Stack.of(construct);
    if (JSON.stringify(stack.resolve(construct.name)) !== JSON.stringify(stack.resolve(aliasName))) continue;
    if (!isAliasOf(construct, fn, facts)) continue;
    throw new CutoverValidationError(
      `function ${facts.label} also has an AWS::Lambda::Alias named ${show(aliasName)} (${resourcePath(construct)}): CloudFormation would ` +
        "set the alias back to the template's version on every deploy, in the middle of a migration. Remove it (fn.addAlias / new lambda.Alias) " +
        'and use migration.alias wherever it was used; to keep the alias that already exists in AWS, first deploy it with ' +
        'alias.applyRemovalPolicy(RemovalPolicy.RETAIN), then remove it from the code (the deploy trigger adopts the alias it finds)',
      migration,
    );
  }
}

function isAliasOf(alias: lambda.CfnAlias, fn: lambda.IFunction, facts: FunctionFacts): boolean {
  const stack = Stack.of(alias);
  const resources = referencedResources(stack, alias.functionName).filter(isLambdaFunctionResource);
  if (resources.length > 0) return facts.resource !== undefined && resources.includes(facts.resource);
  const target = literal(stack.resolve(alias.functionName));
  if (target === undefined) return false;
  if (facts.arn !== undefined && target === facts.arn) return true;
  // A bare name only means the same function in the function's own stack (account and region).
  return facts.name !== undefined && target === facts.name && topLevelStack(stack) === topLevelStack(Stack.of(fn));
}

/** What a Lambda alias target adds to the binding: what `CanaryMigration.alias` is built from. */
export interface LambdaAliasBinding extends MigrationTargetBinding {
  readonly kind: 'lambda-alias';
  readonly lambdaFunction: lambda.IFunction;
  readonly lambdaVersion: lambda.IVersion;
  readonly aliasName: string;
}

export class LambdaAliasTarget implements IMigrationTarget {
  readonly kind = 'lambda-alias' as const;

  constructor(readonly props: LambdaAliasTargetProps) {}

  bind({ scope }: TargetBindContext): LambdaAliasBinding {
    validateLambdaAliasTarget(scope, this.props);
    const { function: fn, aliasName } = this.props;
    const version = this.props.version as lambda.IVersion;
    const functionName = fn.functionName;
    const migrationKey = `${functionName}:${aliasName}`;
    const fnArn = fn.functionArn;
    const aliasArn = `${fnArn}:${aliasName}`;
    return {
      kind: this.kind,
      migrationKey,
      identity: version.version,
      lambdaFunction: fn,
      lambdaVersion: version,
      aliasName,
      environment: { CUTOVER_FUNCTION_NAME: functionName, CUTOVER_ALIAS_NAME: aliasName },
      triggerProperties: {
        FunctionName: functionName,
        AliasName: aliasName,
        TargetVersion: version.version,
        MigrationId: `${migrationKey}:${version.version}`,
      },
      // The Service Authorization Reference lists the `function` resource type (the unqualified
      // ARN) for alias actions, so the function ARN is the narrowest scope IAM evaluates; the alias
      // ARN is listed too in case a request is evaluated against it.
      grantController: (role) =>
        role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ShiftAliasWeights', actions: ['lambda:GetAlias', 'lambda:UpdateAlias'], resources: [fnArn, aliasArn] })),
      grantTrigger: (role) =>
        role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CreateAliasOnce', actions: ['lambda:GetAlias', 'lambda:CreateAlias'], resources: [fnArn, aliasArn] })),
    };
  }
}
