/**
 * Helpers to acknowledge cdk-nag findings whose ids embed a resource ARN, e.g.
 * `AwsSolutions-IAM5[Resource::<MyFn1234.Arn>:*]`.
 *
 * cdk-nag builds that id by flattening the resolved CloudFormation expression (Ref → `<Id>`, GetAtt
 * → `<Id.Attr>`, Join → concatenation, `${...}` → `<...>`). The same flattening is written out here
 * instead of importing it from cdk-nag: cdk-nag is a development tool (the gate test), and a
 * construct must synthesise without it. The gate test fails if the two ever disagree.
 */
import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** The `Resource::…` part of an `AwsSolutions-IAM5` finding for `arn` as it appears in `scope`'s stack. */
export function nagResourceFinding(scope: IConstruct, arn: string): string {
  return `Resource::${flatten(Stack.of(scope).resolve(arn))}`;
}

function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  if (node !== null && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) {
      const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}
