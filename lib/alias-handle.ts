/**
 * `MigratedAlias`: the alias a `CanaryMigration` moves traffic on, as an `IAlias` (`migration.alias`).
 *
 * The alias is not a resource of the stack: the deploy trigger creates it on the first deploy. So
 * everything CloudFormation creates against the alias qualifier (the invoke permissions API
 * Gateway integrations add, `grantInvoke` to a service, a function URL, an event source mapping,
 * an async invoke configuration) must wait for the trigger, or the first deploy races the alias's
 * creation ("Alias not found"). This handle adds that dependency itself, wherever aws-cdk creates
 * the resource (`addPermission` with a `scope` puts the permission under the API, for example).
 */
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct, IDependable } from 'constructs';

/** Props of `MigratedAlias`. */
export interface MigratedAliasProps {
  /** The migrated function (unqualified). */
  readonly function: lambda.IFunction;
  /** Name of the alias. */
  readonly aliasName: string;
  /** The version this deploy migrates to. */
  readonly version: lambda.IVersion;
  /**
   * What creates the alias on the first deploy (the migration's deploy trigger): every resource
   * made against the alias qualifier depends on it.
   */
  readonly createdBy: IDependable;
}

/**
 * `function:<name>:<alias>` of a migrated function, usable wherever an `IFunction` or an `IAlias`
 * is taken. Create it through `CanaryMigration` (`migration.alias`), not directly.
 */
export class MigratedAlias extends lambda.QualifiedFunctionBase implements lambda.IAlias {
  /** Name of the alias. */
  public readonly aliasName: string;
  /**
   * The version this deploy migrates to. The alias's routing is the controller's: during a
   * migration it splits traffic between this version and the old one.
   */
  public readonly version: lambda.IVersion;
  /** The migrated function (unqualified). */
  public readonly lambda: lambda.IFunction;
  /** `<function ARN>:<alias>`. */
  public readonly functionArn: string;
  /** `<function name>:<alias>`. */
  public readonly functionName: string;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly role?: iam.IRole;
  public readonly architecture: lambda.Architecture;
  protected readonly qualifier: string;
  protected readonly canCreatePermissions: boolean;
  private readonly createdBy: IDependable;

  constructor(scope: Construct, id: string, props: MigratedAliasProps) {
    super(scope, id, { account: props.function.env.account, region: props.function.env.region });
    const fn = props.function;
    this.lambda = fn;
    this.aliasName = props.aliasName;
    this.version = props.version;
    this.qualifier = props.aliasName;
    this.functionArn = `${fn.functionArn}:${props.aliasName}`;
    this.functionName = `${fn.functionName}:${props.aliasName}`;
    this.grantPrincipal = fn.grantPrincipal;
    this.role = fn.role;
    this.architecture = fn.architecture;
    this.createdBy = props.createdBy;
    // The alias's permissions live in the function's resource policy: whatever the function allows
    // (a function of this app, an import with `sameEnvironment` or `skipPermissions`), the alias does.
    const base = fn as unknown as { readonly canCreatePermissions?: boolean; readonly _skipPermissions?: boolean };
    this.canCreatePermissions = base.canCreatePermissions ?? this._isStackAccount();
    if (base._skipPermissions) (this as unknown as { _skipPermissions?: boolean })._skipPermissions = true;
  }

  public get aliasRef(): lambda.AliasReference {
    return { aliasArn: this.functionArn };
  }

  /** The function's own network connections (an alias runs in the function's VPC configuration). */
  public override get connections(): ec2.Connections {
    return this.lambda.connections;
  }

  public override get isBoundToVpc(): boolean {
    return this.lambda.isBoundToVpc;
  }

  /** Adds a permission on the alias qualifier, created after the alias exists. */
  public override addPermission(id: string, permission: lambda.Permission): void {
    super.addPermission(id, permission);
    // aws-cdk creates it as `id` under `permission.scope` (an API, a method) or under this handle;
    // nothing is created when permissions cannot be added (another account).
    (permission.scope ?? this).node.tryFindChild(id)?.node.addDependency(this.createdBy);
  }

  /** An event source mapping that invokes the alias, created after the alias exists. */
  public override addEventSourceMapping(id: string, options: lambda.EventSourceMappingOptions): lambda.EventSourceMapping {
    const mapping = super.addEventSourceMapping(id, options);
    mapping.node.addDependency(this.createdBy);
    return mapping;
  }

  /** The alias's asynchronous invoke configuration, created after the alias exists. */
  public override configureAsyncInvoke(options: lambda.EventInvokeConfigOptions): void {
    super.configureAsyncInvoke(options);
    this.node.findChild('EventInvokeConfig').node.addDependency(this.createdBy);
  }

  /**
   * A function URL on the alias qualifier, created after the alias exists (with `authType: NONE`,
   * its public invoke permissions too).
   */
  public override addFunctionUrl(options?: lambda.FunctionUrlOptions): lambda.FunctionUrl {
    const url = super.addFunctionUrl(options);
    url.node.addDependency(this.createdBy);
    return url;
  }

  /** A metric of the invocations through the alias (dimensions `FunctionName` and `Resource`), like `lambda.Alias`. */
  public override metric(metricName: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return super.metric(metricName, {
      dimensionsMap: { FunctionName: this.lambda.functionName, Resource: `${this.lambda.functionName}:${this.aliasName}` },
      ...props,
    });
  }
}
