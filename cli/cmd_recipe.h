/* cli/cmd_recipe.h: `kiln recipe list|resolve`, the recipe catalog.
 *
 * list shows the runtime criteria (values, aliases, which values an overlay
 * names), the overlays, the locked components and the recipe RGDs that ship
 * in recipes/. resolve prints the locked component set for criteria and
 * why each overlay applied; a criterion that matched nothing exits 1 with a
 * message naming it.
 */
#ifndef KILN_CLI_CMD_RECIPE_H
#define KILN_CLI_CMD_RECIPE_H

/* argv[0] is "recipe"; returns the process exit status (KILN_EXIT_*). */
int kiln_cmd_recipe(int argc, char **argv);

#endif
