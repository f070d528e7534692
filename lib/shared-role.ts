/**
 * `SharedRole`: the role of a function that serves every migration of a stack (the shared
 * controllers, the deploy trigger, the probe), whose policy is the union of what each migration's
 * target and old-side pin grant it.
 *
 * Why a role class of its own: the bindings (lib/targets/, lib/capacity/) name their statements
 * (`ShiftAliasWeights`, `PinOldFleet` …), each scoped to one migration's resources. Two migrations
 * of one kind would put two statements with the same `Sid` and different resources into one
 * policy, which IAM refuses (a Sid is unique within an IAM policy), and aws-cdk merges only
 * statements without a Sid. So, as each statement is added:
 * - the same statement again (same Sid, actions, resources, conditions) is added once: two load
 *   balancer migrations share one `ReadListenerRouting` on `*`;
 * - another statement under a Sid already taken gets the next free `<Sid>2`, `<Sid>3` …: still its
 *   own statement, still scoped to its own migration's resources.
 * A stack with one migration therefore gets exactly the statements a per-migration role had.
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';

export class SharedRole extends iam.Role {
  /** Each Sid taken so far → the statement it names, as resolved JSON without the Sid (to compare). */
  private readonly statementsBySid = new Map<string, string>();

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    super(scope, id, props);
  }

  public override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    const sid = statement.sid;
    if (sid === undefined) return super.addToPrincipalPolicy(statement);
    const body = this.bodyOf(statement);
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? sid : `${sid}${n}`;
      const taken = this.statementsBySid.get(candidate);
      if (taken === body) return { statementAdded: true, policyDependable: this };
      if (taken === undefined) {
        this.statementsBySid.set(candidate, body);
        return super.addToPrincipalPolicy(n === 1 ? statement : statement.copy({ sid: candidate }));
      }
    }
  }

  private bodyOf(statement: iam.PolicyStatement): string {
    const { Sid: _sid, ...rest } = statement.toStatementJson() as Record<string, unknown>;
    return JSON.stringify(Stack.of(this).resolve(rest));
  }
}
