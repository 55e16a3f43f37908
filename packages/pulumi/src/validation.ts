import * as pulumi from '@pulumi/pulumi';

/**
 * A bad argument, reported by Pulumi as one line naming the argument and the component, without
 * a stack trace.
 */
export function invalidArgument(
  resource: pulumi.Resource,
  argument: string,
  problem: string,
): pulumi.ResourceError {
  return new pulumi.ResourceError(`invalid argument ${argument}: ${problem}`, resource, true);
}

/** Fails when `value` is not an integer within [min, max]. */
export function checkInteger(
  resource: pulumi.Resource,
  argument: string,
  value: number,
  min: number,
  max: number,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(resource, argument, `${value} is not an integer from ${min} to ${max}`);
  }
}

/**
 * A list that must not be empty: checked now when it is known, and when it resolves otherwise
 * (a failed resolution fails the update with the same message).
 */
export function nonEmptyList(
  resource: pulumi.Resource,
  argument: string,
  list: pulumi.Input<pulumi.Input<string>[]>,
): pulumi.Output<string[]> {
  if (Array.isArray(list) && list.length === 0) {
    throw invalidArgument(resource, argument, 'the list is empty');
  }
  return pulumi.output(list).apply((items) => {
    if (items.length === 0) throw invalidArgument(resource, argument, 'the list is empty');
    return items;
  });
}

/**
 * An integer argument that may be an output: checked now when it is a plain value, and when it
 * resolves otherwise (what takes the returned output never gets a bad value).
 */
export function checkedInteger(
  resource: pulumi.Resource,
  argument: string,
  value: pulumi.Input<number>,
  min: number,
  max: number,
): pulumi.Output<number> {
  if (typeof value === 'number') checkInteger(resource, argument, value, min, max);
  return pulumi.output(value).apply((resolved) => {
    checkInteger(resource, argument, resolved, min, max);
    return resolved;
  });
}
