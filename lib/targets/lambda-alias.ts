/**
 * `MigrationTarget.lambdaAlias`: the weights of a Lambda alias between the version it points at and
 * a new version. The alias is not a resource of the stack (a deploy would reset its weights): the
 * deploy trigger creates it on the first deploy and records a migration whenever `version` changes.
 */
import { Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
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
  /** The version to migrate to, usually `fn.currentVersion`. */
  readonly version: lambda.IVersion;
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
    const stack = Stack.of(scope);
    const versionFunction = stack.resolve(props.version!.lambda.functionArn);
    const migratedFunction = stack.resolve(props.function!.functionArn);
    if (typeof versionFunction === 'string' && typeof migratedFunction === 'string' && versionFunction !== migratedFunction) {
      fail(`version belongs to ${versionFunction}, not to the migrated function ${migratedFunction}`);
    }
  }
}

export class LambdaAliasTarget implements IMigrationTarget {
  readonly kind = 'lambda-alias' as const;

  constructor(readonly props: LambdaAliasTargetProps) {}

  bind({ scope }: TargetBindContext): MigrationTargetBinding & { readonly lambdaFunction: lambda.IFunction } {
    validateLambdaAliasTarget(scope, this.props);
    const { function: fn, aliasName, version } = this.props;
    const functionName = fn.functionName;
    const migrationKey = `${functionName}:${aliasName}`;
    const fnArn = fn.functionArn;
    const aliasArn = `${fnArn}:${aliasName}`;
    return {
      kind: this.kind,
      migrationKey,
      identity: version.version,
      lambdaFunction: fn,
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
