import {
  AddTagsCommand,
  DescribeLoadBalancerAttributesCommand,
  DescribeTagsCommand,
  ElasticLoadBalancingV2Client,
  ModifyLoadBalancerAttributesCommand,
  RemoveTagsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { KeepAliveDrain, ORIGINAL_TAG, withKeepAliveDrain } from '../../lambda/aws/traffic/keep-alive-drain';
import { FakeTraffic } from '../core/fakes';

const elb = new ElasticLoadBalancingV2Client({ region: 'eu-west-1', maxAttempts: 3 });
const mock = mockClient(elb);
const ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/new-fleet/0123456789abcdef';
const drain = () => new KeepAliveDrain({ elb, loadBalancerArn: ARN });
const attrs = (seconds?: number) => ({ Attributes: seconds === undefined ? [] : [{ Key: 'client_keep_alive.seconds', Value: String(seconds) }] });
const tags = (original?: string) => ({ TagDescriptions: [{ ResourceArn: ARN, Tags: original === undefined ? [] : [{ Key: ORIGINAL_TAG, Value: original }] }] });

afterEach(() => mock.reset());

describe('KeepAliveDrain', () => {
  it('records the original setting in a tag first, then shortens the client Keep-Alive to 60 s', async () => {
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs(3600));
    mock.on(DescribeTagsCommand).resolves(tags());
    const line = await drain().drain();
    expect(line).toMatch(/shortened from 3600 s to 60 s/);
    const order = mock.calls().map((c) => c.args[0].constructor.name);
    expect(order.indexOf('AddTagsCommand')).toBeLessThan(order.indexOf('ModifyLoadBalancerAttributesCommand'));
    expect(mock.commandCalls(AddTagsCommand)[0]!.args[0].input.Tags).toEqual([{ Key: ORIGINAL_TAG, Value: '3600' }]);
    expect(mock.commandCalls(ModifyLoadBalancerAttributesCommand)[0]!.args[0].input.Attributes).toEqual([{ Key: 'client_keep_alive.seconds', Value: '60' }]);
  });

  it('reads an absent attribute as ELB default (3600 s), keeps an earlier tag after a crash, and leaves 60 s alone', async () => {
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs());
    mock.on(DescribeTagsCommand).resolves(tags('900'));
    await drain().drain();
    // The tag written before a crash is the original: it is not overwritten with 3600.
    expect(mock.commandCalls(AddTagsCommand)).toHaveLength(0);
    expect(mock.commandCalls(ModifyLoadBalancerAttributesCommand)).toHaveLength(1);
    mock.reset();
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs(60));
    expect(await drain().drain()).toMatch(/already 60 s/);
    expect(mock.commandCalls(ModifyLoadBalancerAttributesCommand)).toHaveLength(0);
  });

  it('undoes the drain from the tag, leaves a setting someone changed meanwhile, and is idempotent', async () => {
    mock.on(DescribeTagsCommand).resolves(tags('1800'));
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs(60));
    expect(await drain().undrain()).toBe('client Keep-Alive of the new load balancer back to 1800 s');
    expect(mock.commandCalls(ModifyLoadBalancerAttributesCommand)[0]!.args[0].input.Attributes).toEqual([{ Key: 'client_keep_alive.seconds', Value: '1800' }]);
    expect(mock.commandCalls(RemoveTagsCommand)).toHaveLength(1);
    mock.reset();
    mock.on(DescribeTagsCommand).resolves(tags('1800'));
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs(300));
    expect(await drain().undrain()).toMatch(/changed to 300 s meanwhile and is left so/);
    expect(mock.commandCalls(ModifyLoadBalancerAttributesCommand)).toHaveLength(0);
    mock.reset();
    mock.on(DescribeTagsCommand).resolves(tags());
    expect(await drain().undrain()).toMatch(/nothing to undo/);
  });

  it('lets a throttled change fail the call after the tag (the next drain changes it), and refuses a damaged tag', async () => {
    mock.on(DescribeLoadBalancerAttributesCommand).resolves(attrs(3600));
    mock.on(DescribeTagsCommand).resolves(tags());
    // The mock replaces the client's send, so the SDK's own retries are not in play here: the error
    // is what the caller sees after them (the residual watch records it and goes on).
    mock.on(ModifyLoadBalancerAttributesCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling', $metadata: { httpStatusCode: 400 } }));
    await expect(drain().drain()).rejects.toThrow(/Rate exceeded/);
    expect(mock.commandCalls(AddTagsCommand)).toHaveLength(1);
    mock.reset();
    mock.on(DescribeTagsCommand).resolves(tags('soon'));
    await expect(drain().undrain()).rejects.toThrow(/tag cutover:original-client-keep-alive on the new load balancer is "soon"/);
  });

  it('rejects a bad ARN when built, and decorates a traffic port without changing its weights', async () => {
    expect(() => new KeepAliveDrain({ elb, loadBalancerArn: 'app/new/123' })).toThrow(/Application Load Balancer ARN, got "app\/new\/123"/);
    const traffic = new FakeTraffic();
    const port = withKeepAliveDrain(traffic, drain());
    const state = await port.getWeight();
    await port.setWeight(10, state.revision);
    expect(traffic.weight).toBe(10);
    expect(typeof port.drain).toBe('function');
  });
});
