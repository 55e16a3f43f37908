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
 * An argument that may be an output, checked now when it is a plain value (the preview fails at
 * once) and again when it resolves (a failed resolution fails the update with the same message):
 * what takes the returned output never gets a bad value. `check` throws.
 */
export function checked<T extends number | string | readonly unknown[]>(
  value: pulumi.Input<T>,
  check: (value: pulumi.Unwrap<T>) => void,
): pulumi.Output<pulumi.Unwrap<T>> {
  // A plain list may hold outputs; what is checked of it now (its length) is known already.
  if (!pulumi.Output.isInstance(value) && !(value instanceof Promise))
    check(value as pulumi.Unwrap<T>);
  return pulumi.output(value).apply((resolved) => {
    check(resolved);
    return resolved;
  });
}

/** A list that must not be empty. */
export function nonEmptyList(
  resource: pulumi.Resource,
  argument: string,
  list: pulumi.Input<pulumi.Input<string>[]>,
): pulumi.Output<string[]> {
  return checked(list, (items) => {
    if (items.length === 0) throw invalidArgument(resource, argument, 'the list is empty');
  });
}

/** An integer within [min, max]. */
export function checkedInteger(
  resource: pulumi.Resource,
  argument: string,
  value: pulumi.Input<number>,
  min: number,
  max: number,
): pulumi.Output<number> {
  return checked(value, (resolved) => checkInteger(resource, argument, resolved, min, max));
}
