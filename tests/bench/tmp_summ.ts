import { summarizeCpuProfile } from "./cpu_profile.ts";
const [file, units] = [Deno.args[0], Number(Deno.args[1])];
console.log(summarizeCpuProfile(JSON.parse(Deno.readTextFileSync(file)), units, 45).split("inclusive time by function:")[1]);
