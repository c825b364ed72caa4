import { NEXT, type Done, type RequestContext, type Step } from './context';
import { checkFraming } from './framing';
import { admit } from './admit';
import { resolveRoute } from './resolve';
import { runTracedStages, startTrace } from './trace';

/**
 * Runs a request through its stages: the framing checks and route resolution every request
 * gets, then the stages its route was compiled with. A stage that answers ends the run; only a
 * stage that has to wait makes the run wait.
 */
export async function runPipeline(ctx: RequestContext): Promise<Done> {
  if (ctx.gw.tracing !== null) startTrace(ctx, ctx.gw.tracing);
  let step: Step | Promise<Step> = checkFraming(ctx);
  if (step !== NEXT) return step;
  step = resolveRoute(ctx);
  if (step !== NEXT) return step;
  if (ctx.gw.fair !== null) {
    step = admit(ctx);
    if (step !== NEXT) return step;
  }
  const stages = ctx.route!.stages;
  if (ctx.trace !== null) return runTracedStages(ctx, stages, ctx.trace);
  for (let i = 0; i < stages.length; i++) {
    step = stages[i]!(ctx);
    if (step instanceof Promise) step = await step;
    if (step !== NEXT) return step;
  }
  return undefined;
}
